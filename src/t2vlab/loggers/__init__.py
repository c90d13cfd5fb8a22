"""What a run sends to its loggers beyond Lightning's `self.log`: one step unit, the run's labels, end scores and
the evaluation's clips."""
