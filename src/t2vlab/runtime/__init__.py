"""Run-time plumbing shared by every family and task: crash-safe writes (atomic, atomic_checkpoint_io), cache
shards, checkpoint files and resuming, facts about the machine (hardware, flops), the configs' OmegaConf resolvers
and the markers code puts in its signatures for the config check (config_schema)."""
