"""OmegaConf resolvers the configs use; call `register_resolvers()` before composing."""

from omegaconf import OmegaConf

from t2vlab.hardware import cpu_precision


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("t2vlab.cpu_precision"):
        OmegaConf.register_new_resolver("t2vlab.cpu_precision", cpu_precision)
