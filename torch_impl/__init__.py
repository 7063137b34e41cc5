"""The torch side: torch.nn twins of scratch modules, loaded from scratch weights, and back.

``to_torch(module)`` builds the torch.nn module that a scratch module mirrors, with the same
configuration, dtype and weights (copied in place under ``torch.no_grad()``, never by
rebinding Parameters). ``from_torch(module)`` goes the other way.
"""

import torch_impl.models  # noqa: F401  (registers the models' twins)
from torch_impl import cells  # noqa: F401  (registers the cells' twins)
from torch_impl.convert import from_torch, register_twin, to_torch

__all__ = ["from_torch", "register_twin", "to_torch"]
