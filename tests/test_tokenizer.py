import pytest

from t2vlab.data.circles import PROMPT_MOTIONS
from t2vlab.text.word_tokenizer import WordTokenizer


def test_vocabulary_is_sorted_and_splits_hyphens():
    tok = WordTokenizer.from_texts(PROMPT_MOTIONS)
    assert tok.vocab[0] == "<pad>" and tok.vocab[1:] == sorted(tok.vocab[1:])
    assert "up-right" not in tok.vocab and {"up", "right"} <= set(tok.vocab)
    assert tok.encode("circle moving up-right") == [tok.index[w] for w in ("circle", "moving", "up", "right")]


def test_ids_do_not_depend_on_text_order():
    texts = list(PROMPT_MOTIONS)
    assert WordTokenizer.from_texts(texts).vocab == WordTokenizer.from_texts(texts[::-1]).vocab


def test_batch_padding_and_mask():
    tok = WordTokenizer.from_texts(PROMPT_MOTIONS)
    ids, mask = tok(["circle shrinking", "circle moving diagonally up-left"])
    assert ids.shape == (2, 5) and mask.sum(1).tolist() == [2, 5]
    assert (ids[~mask] == 0).all()


def test_unknown_word_lists_the_vocabulary():
    tok = WordTokenizer.from_texts(PROMPT_MOTIONS)
    with pytest.raises(ValueError, match="unknown word.*'square'.*vocabulary is: .*circle"):
        tok.encode("square moving left")
