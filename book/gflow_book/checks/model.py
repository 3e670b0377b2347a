"""Checks for chapter 3 (from the layer to a language model): receptive field and parameter count."""

from __future__ import annotations

import ast
import inspect
import textwrap
from typing import Callable, Tuple

import torch

from gflow_lite import GrassmannLM, LMConfig
from gflow_lite.model import Block

from .core import Mismatch, expect_close, expect_equal, make_generator, run_check

__all__ = ["check_receptive_field", "check_grassmann_param_count", "check_causal_block", "check_scheduled_adamw_step",
           "block_params"]


def check_receptive_field(fn: Callable[[Tuple[int, ...], int, str], int]) -> bool:
    """``fn(offsets, n_layers, offset_mode)`` must equal `LMConfig.receptive_field`."""

    def case(offsets, n_layers, mode):
        def run(f):
            cfg = LMConfig(vocab_size=8, block_size=8, d_model=8, n_heads=1, d_ff=8, r=2, n_layers=n_layers,
                           offsets=offsets, offset_mode=mode)
            out = f(tuple(offsets), n_layers, mode)
            expect_equal(None if out is None else int(out), cfg.receptive_field(),
                         f"offsets={tuple(offsets)}, n_layers={n_layers}, offset_mode={mode!r}")
        return run

    paper6, paper12 = (1, 2, 4, 8, 12, 16), (1, 1, 2, 2, 4, 4, 8, 8, 12, 12, 16, 16)
    cases = [case(paper6, 6, "per_layer"), case(paper6, 6, "all"), case(paper12, 12, "per_layer"),
             case(paper12, 12, "all"), case((1, 2, 4, 8, 8, 8), 6, "per_layer"), case((3,), 1, "all"),
             case((5, 1, 2), 3, "per_layer"), case((2, 7, 7, 1), 2, "all")]
    return run_check("3.1 receptive field", fn, cases, hint=[
        "one layer moves information back by at most the largest offset it uses; the stack adds the layers up",
        "'all' gives every layer every offset; 'per_layer' gives layer i only offsets[i]",
        "per_layer: sum(offsets[:n_layers]); all: n_layers * max(offsets)"])


def _library_count(V: int, block: int, d: int, d_ff: int, r: int, n_layers: int, offsets) -> int:
    cfg = LMConfig(vocab_size=V, block_size=block, d_model=d, n_layers=n_layers, d_ff=d_ff, r=r, n_heads=1,
                   offsets=offsets, dropout=0.0)
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        return GrassmannLM(cfg).num_params()


def check_grassmann_param_count(fn: Callable[[int, int, int, int, int, int], int]) -> bool:
    """``fn(vocab_size, block_size, d_model, d_ff, r, n_layers)``: parameters of `GrassmannLM` as the paper
    describes it (learned positions, tied head, mean over offsets, no extra map)."""

    def case(V, block, d, d_ff, r, n_layers, offsets=(1, 2, 4, 8, 12, 16)):
        def run(f):
            what = f"vocab_size={V}, block_size={block}, d_model={d}, d_ff={d_ff}, r={r}, n_layers={n_layers}"
            out = f(V, block, d, d_ff, r, n_layers)
            if out is not None and int(out) != out:
                raise Mismatch(f"{what}: expected an integer, got {out!r}")
            expect_equal(None if out is None else int(out), _library_count(V, block, d, d_ff, r, n_layers,
                                                                           offsets), what)
        return run

    cases = [case(30522, 128, 256, 1024, 32, 6), case(30522, 256, 256, 1024, 32, 12), case(50, 16, 8, 32, 4, 1),
             case(7, 3, 6, 5, 2, 2, (1,)), case(100, 64, 32, 128, 8, 3, (1, 2))]
    return run_check("3.2 parameter count", fn, cases, hint=[
        "count the pieces once each: token and position embeddings, then per layer the mixer (three linear "
        "maps), the FFN (two) and two LayerNorms, then the final LayerNorm; the head is tied to the token "
        "embedding, so it adds nothing",
        "a Linear(n_in, n_out) has n_in n_out + n_out parameters, a LayerNorm(d) 2d; the mixer's maps are "
        "W_red: d -> r, W_plu: r(r-1)/2 -> d, W_gate: 2d -> d; the FFN d -> d_ff -> d",
        "V d + block d + 2 d + n_layers (d r + r + P d + d + 2 d^2 + d + 2 d d_ff + d_ff + d + 4 d), "
        "P = r(r-1)/2"])


def block_params(block: Block) -> dict:
    """A library `Block`'s LayerNorm and FFN tensors, by the names exercise 3.3 uses."""
    t = lambda p: p.detach().clone()  # noqa: E731
    return {"ln1_weight": t(block.ln1.weight), "ln1_bias": t(block.ln1.bias), "fc1_weight": t(block.ffn.fc1.weight),
            "fc1_bias": t(block.ffn.fc1.bias), "fc2_weight": t(block.ffn.fc2.weight), "fc2_bias": t(block.ffn.fc2.bias),
            "ln2_weight": t(block.ln2.weight), "ln2_bias": t(block.ln2.bias), "eps": block.ln1.eps}


def check_causal_block(fn: Callable) -> bool:
    """``fn(h, mix, params)`` must equal the library's post-LN `Block` whose mixer is ``mix``."""

    def case(B, T, d, d_ff, seed):
        def run(f):
            cfg = LMConfig(vocab_size=8, block_size=max(T, 2), d_model=d, n_layers=1, d_ff=d_ff, r=3, n_heads=1,
                           offsets=(1, 2), dropout=0.0)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                block = GrassmannLM(cfg).double().eval().blocks[0]
                for p in block.parameters():
                    torch.nn.init.normal_(p, mean=0.5 if p.dim() == 1 else 0.0, std=0.3)
            h = 3 * torch.randn(B, T, d, generator=make_generator(seed), dtype=torch.float64)
            with torch.no_grad():
                out = f(h.clone(), lambda x: block.mix(x), block_params(block))  # called from here: allowed
                expected = block(h)
            expect_close(out, expected, f"h of shape {(B, T, d)}, d_ff={d_ff}", rtol=1e-6, atol=1e-8)
        return run

    return run_check("3.3 the causal block", fn, [case(2, 9, 6, 12, 0), case(1, 1, 4, 8, 1), case(3, 5, 7, 20, 2)],
                     hint=[
        "the paper's block normalises after each part and has no residual around the mixer: mix, LayerNorm, then "
        "the FFN with a residual, then a second LayerNorm",
        "LayerNorm: (x - mean) / sqrt(biased variance + eps) * weight + bias over the last dimension; "
        "FFN(x) = fc2(GELU(fc1(x))) with the exact (erf) GELU; x = LN1(mix(h)); out = LN2(x + FFN(x))",
        "x = ln(mix(h), ln1); return ln(x + gelu(x @ fc1_weight.T + fc1_bias) @ fc2_weight.T + fc2_bias, ln2)"])


def check_scheduled_adamw_step(fn: Callable) -> bool:
    """``fn(param, grad, m, v, step, total_steps, peak_lr, warmup, weight_decay) -> (param, m, v)`` must be one
    step of `torch.optim.AdamW` (betas 0.9, 0.999, eps 1e-8) at the rate the library's schedule gives the
    ``step``-th update: ``gflow_lite.train.lr_at(step - 1, Hyperparams(lr=peak, min_lr=peak / 10,
    warmup_steps=warmup, max_steps=total_steps))`` (the library counts steps from 0, AdamW from 1)."""
    from gflow_lite.train import Hyperparams, lr_at

    def case(step, total, warmup, wd, seed, shape=(3, 4)):
        def run(f):
            g = make_generator(seed)
            p0, grad = torch.randn(*shape, generator=g, dtype=torch.float64), torch.randn(*shape, generator=g,
                                                                                         dtype=torch.float64)
            m0 = 0.1 * torch.randn(*shape, generator=g, dtype=torch.float64) if step > 1 else torch.zeros(shape, dtype=torch.float64)
            v0 = (0.01 * torch.randn(*shape, generator=g, dtype=torch.float64)).abs() if step > 1 else torch.zeros(shape, dtype=torch.float64)
            lr = lr_at(step - 1, Hyperparams(lr=3e-3, min_lr=3e-4, warmup_steps=warmup, max_steps=total))
            param = torch.nn.Parameter(p0.clone())
            opt = torch.optim.AdamW([param], lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=wd)
            param.grad = grad.clone()
            opt.state[param] = {"step": torch.tensor(float(step - 1)), "exp_avg": m0.clone(), "exp_avg_sq": v0.clone()}
            opt.step()
            state = opt.state[param]
            out = f(p0.clone(), grad.clone(), m0.clone(), v0.clone(), step, total, 3e-3, warmup, wd)
            what = f"step {step} of {total}, warmup {warmup}, weight_decay={wd}"
            if not isinstance(out, (tuple, list)) or len(out) != 3:
                raise Mismatch(f"{what}: return the triple (param, m, v), got {type(out).__name__}")
            for k, (name, exp) in enumerate((("param", param.detach()), ("m", state["exp_avg"]),
                                             ("v", state["exp_avg_sq"]))):
                expect_close(out[k], exp, f"{what}: {name}", rtol=1e-7, atol=1e-10)
        return run

    cases = [case(1, 100, 10, 0.01, 0), case(5, 100, 10, 0.0, 1), case(60, 100, 10, 0.1, 2), case(50, 50, 5, 0.01, 3),
             case(7, 40, 1, 0.01, 4, (5,))]

    def no_optimizer(f):
        tree = _source(getattr(f, "__wrapped_learner__", f))
        if tree and any(isinstance(n, ast.Attribute) and n.attr in ("optim", "AdamW", "Adam") for n in ast.walk(tree)):
            return "the exercise asks for the update written out, not torch.optim"
        return None

    return run_check("3.4 one training step", fn, cases, constraints=[no_optimizer], hint=[
        "first the learning rate of this step from the schedule (warmup, then cosine to a tenth), then AdamW: "
        "decay the weights, update both moving averages, correct their bias, step",
        "with s = step - 1 (the schedule counts from 0) and low = peak / 10: lr = peak (s + 1) / warmup while "
        "s < warmup, else low + (peak - low) (1 + cos(pi progress)) / 2, progress = (s - warmup) / (total - warmup); "
        "param *= 1 - lr wd; m = 0.9 m + 0.1 grad; v = 0.999 v + 0.001 grad^2; divide m, v by 1 - beta^step",
        "return param - lr * m_hat / (v_hat.sqrt() + 1e-8), m, v"])


def _source(fn: Callable):
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
