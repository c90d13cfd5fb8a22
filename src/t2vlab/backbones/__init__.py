"""Frozen text-to-image backbones whose embedding space the Splitter walks (see base.Backbone)."""
