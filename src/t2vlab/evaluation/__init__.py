"""Everything that scores a run or a folder of videos: the metrics (metrics/), the protocols that say what to
generate and how to score it (protocols/), the circles motion scoring of a module (circles_scoring), generating and
reading clip folders (sampling), tokenizer reconstruction, the cross-family leaderboard (benchmark), the printed and
logged reports (reports) and the offline comparison of logged runs (compare). `tasks/evaluate.py` puts them to work."""
