"""OmegaConf resolvers the configs use; call `register_resolvers()` before composing."""

from omegaconf import OmegaConf

from t2vlab.runtime.hardware import backbone_dtype, cpu_precision, torch_device


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("t2vlab.cpu_precision"):
        OmegaConf.register_new_resolver("t2vlab.cpu_precision", cpu_precision)
    if not OmegaConf.has_resolver("t2vlab.torch_device"):
        OmegaConf.register_new_resolver("t2vlab.torch_device", torch_device)
    if not OmegaConf.has_resolver("t2vlab.backbone_dtype"):
        OmegaConf.register_new_resolver("t2vlab.backbone_dtype", backbone_dtype)
