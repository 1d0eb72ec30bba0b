"""The zero-cost proxy suite on both spaces: runs, deterministic, never mutates the
caller's model, and a sanity property per proxy."""
import copy
import functools

import pytest
import torch

import track1  # noqa: F401
from track1.nb201.space import NB201Space, decode
from track1.nb201.supernet import NB201Supernet
from track1.proxies import PROXIES, get_proxy
from track1.resnet48.space import ResNet48Space

MINE = ("flops", "params", "synflow", "snip", "grasp", "naswot", "grad_norm", "meco", "meco_opt",
        "zico", "swap", "discovered", "discovered_blend")
EXAMPLE = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
           "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")


def _nets():
    torch.manual_seed(0)
    nb = NB201Space(C=8, N=1).build(EXAMPLE)
    t1 = ResNet48Space().build(ResNet48Space().smallest(), num_classes=10)
    return {"nb201": nb, "track1": t1}


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, 10, (8,), generator=g)


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", MINE)
@pytest.mark.parametrize("space", ["nb201", "track1"])
def test_proxy_runs_is_deterministic_and_leaves_model_untouched(name, space, batch):
    model = _nets()[space]
    model.train()
    before = _state(model)
    x, y = batch
    if name in ("meco", "meco_opt") and space == "track1":  # one image in train-mode BN: no 1x1 maps
        x = torch.nn.functional.interpolate(x, size=64)
    fn = get_proxy(name)
    if name == "swap":   # its 32 re-initialisations cost seconds here; 2 show the same
        fn = functools.partial(fn, repeats=2)
        x = torch.cat([x, x.flip(-1)])   # 8 images reach its ceiling of 2^8 patterns
        y = torch.cat([y, y])
    a = fn(model, x, y, seed=3)
    b = fn(model, x, y, seed=3)
    assert isinstance(a, float) and a == b
    assert a == a  # not NaN
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.training and all(p.grad is None for p in model.parameters())
    # without targets the gradient proxies draw labels from the seed: still reproducible
    assert fn(model, x, seed=5) == fn(model, x, seed=5)


def test_suite_lists_every_proxy_module():
    assert set(MINE) <= set(PROXIES)
    with pytest.raises(ValueError, match="unknown proxy"):
        get_proxy("magic")


def test_params_and_flops_equal_exact_counts(batch):
    x, _ = batch
    space = NB201Space()
    for code in (EXAMPLE, "|none~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|none~2|"):
        arch = decode(code)
        net = space.build(arch)
        cost = space.cost(arch)
        assert get_proxy("params")(net, x) == cost["params"]
        assert get_proxy("flops")(net, x) == cost["flops"]
    from track1.resnet48.costs import count_costs
    r = ResNet48Space()
    arch = r.smallest()
    net = r.build(arch, num_classes=1000)
    assert get_proxy("params")(net, x) == count_costs(arch)["params"]
    assert get_proxy("flops")(net, torch.zeros(1, 3, 224, 224)) == count_costs(arch)["macs"]


def test_wider_or_bigger_nets_score_higher_on_cost_proxies(batch):
    x, _ = batch
    r = ResNet48Space()
    big, small = r.build(r.largest(), num_classes=10), r.build(r.smallest(), num_classes=10)
    for name in ("flops", "params", "synflow"):
        assert get_proxy(name)(big, x) > get_proxy(name)(small, x), name
    nb = NB201Space(C=8, N=1)
    assert get_proxy("flops")(nb.build(nb.largest()), x) > get_proxy("flops")(nb.build(nb.smallest()), x)


def test_naswot_distinguishes_a_dead_network(batch):
    x, _ = batch
    nb = NB201Space(C=8, N=1)
    torch.manual_seed(0)
    live = get_proxy("naswot")(nb.build(nb.largest()), x)
    dead = get_proxy("naswot")(nb.build((0,) * 6), x)  # all-none cells: every image alike
    assert live > dead and dead == float("-inf")


def test_flops_on_a_supernet_counts_only_the_active_path(batch):
    x, _ = batch
    net = NB201Supernet(C=8, N=1)
    for arch in (net.space.largest(), decode(EXAMPLE)):
        net.set_arch(arch)
        assert get_proxy("flops")(net, x) == get_proxy("flops")(net.extract(), x)
    state = _state(net)
    for name in ("snip", "grasp", "grad_norm", "naswot", "synflow"):
        assert get_proxy(name)(net, x, seed=0) == get_proxy(name)(copy.deepcopy(net), x, seed=0)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in state.items())


def test_gradient_proxies_depend_on_the_labels(batch):
    x, y = batch
    net = _nets()["nb201"]
    for name in ("snip", "grad_norm", "grasp"):
        assert get_proxy(name)(net, x, y) != get_proxy(name)(net, x, (y + 1) % 10), name


def test_unknown_options_are_rejected(batch):
    x, _ = batch
    with pytest.raises(TypeError, match="unknown options"):
        get_proxy("snip")(_nets()["nb201"], x, bogus=1)


@pytest.mark.parametrize("name", ["meco", "meco_opt", "naswot"])
@pytest.mark.parametrize("space", ["nb201", "track1"])
def test_forward_proxies_borrow_the_model_and_give_it_back_as_it_was(name, space, batch):
    """MeCo, MeCo_opt and NASWOT run their forward on the caller's model itself
    (``track1.proxies.borrow``), not on a copy: an eval-mode model with running statistics
    of its own scores as a train-mode copy of it does and comes back in eval mode with its
    statistics; a forward that fails puts it back too."""
    from track1.proxies.borrow import borrowed
    model = _nets()[space]
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    model.eval()
    before = _state(model)
    x, y = batch
    x = torch.nn.functional.interpolate(x, size=64)
    fn = get_proxy(name)
    assert fn(model, x, y, seed=3) == fn(copy.deepcopy(model).train(), x, y, seed=3)
    assert not any(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(RuntimeError, match="mid-forward"):
        with borrowed(model, "cpu", train=True) as net:
            net(x)                      # updates the running statistics
            raise RuntimeError("mid-forward")
    assert not any(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
