"""Publishing: the upload stage (`stage.run_upload`) and one module per platform (`youtube`,
`vk`, `local`), sharing the target bookkeeping in `targets`."""

from leap.pipeline.publish.stage import run_upload

__all__ = ["run_upload"]
