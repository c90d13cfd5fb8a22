"""circles_unclip: a small unCLIP stack (text encoder, frame encoder, prior, decoder) trained on circles."""
