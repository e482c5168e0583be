"""Every torchvision classification model builds a complete, well-formed graph."""

import pytest
import torchvision

from archlab.graph import build_graph, zoo_model
from tests.graph_checks import assert_well_formed

ZOO = torchvision.models.list_models(module=torchvision.models)


@pytest.mark.parametrize("name", ZOO)
def test_zoo_model_graph(name):
    g = build_graph(zoo_model(name))
    assert_well_formed(g)
    assert g.meta["traced_on"] == "meta"
    assert not g.fallbacks, g.fallbacks


@pytest.mark.parametrize("name", ["resnet50", "efficientnet_b0", "convnext_tiny", "vit_b_16", "swin_t"])
def test_zoo_model_at_cifar_size(name):
    size = 32 if not name.startswith(("vit", "swin")) else 224
    g = build_graph(zoo_model(name), input_size=size)
    assert_well_formed(g)
