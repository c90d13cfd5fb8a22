"""Pretrained networks and their weights, shared by the metrics and the losses: where the weights come from,
the error when they cannot be had here, and the networks themselves."""
