"""The operator benchmark's report (its table and ratio columns, from hand-made records), and the
offline build report of the four-step column kernels.

The records below are synthetic (made-up times), not measurements; the GPU run itself is
benchmarks/bench_operator.py on the device machine.
"""

import argparse
import json
import shutil
import subprocess
import sys

import pytest
import torch


def _rec(variant, ms, **extra):
    return {"variant": variant, "batch": 1, "L": 8192, "status": "ok", "ms": ms, **extra}


def test_step_graph_ratio_compares_the_two_step_graphed_cells(load_benchmark):
    bench = load_benchmark("bench_operator")
    records = [_rec("op_fast_graphed", 0.5, peak_gib=0.1), _rec("attn_flash", 0.8, peak_gib=0.05),
               _rec("op_fast_stepgraph", 0.32), _rec("attn_flash_stepgraph", 0.72)]
    meta = {"device": "synthetic", "torch": "x", "date": "d", "copy_bytes_per_s": 3e12}
    md = bench.markdown(records, meta, argparse.Namespace(d_model=256, reps=100))
    head, _, row = md.split("## batch 1: time (ms)")[1].strip().splitlines()[:3]
    cells = dict(zip((c.strip() for c in head.split("|")), (c.strip() for c in row.split("|"))))
    assert cells["op_fast_stepgraph"] == "0.32" and cells["attn_flash_stepgraph"] == "0.72"
    assert cells["attn / op, both step-graphed"] == "2.25x"  # 0.72 / 0.32, not 0.8 / 0.32
    assert cells["attn / best op_fast"] == "1.6x"  # ungraphed attention over the two-graph op
    memory = md.split("peak memory")[1]
    assert "| 8,192 | " in memory and "n/a" in memory  # step-graph cells carry no peak


def test_step_graph_variants_are_planned_only_on_the_gpu_run(load_benchmark):
    bench = load_benchmark("bench_operator")
    quick = bench.parse_args(["--out", "/tmp/unused", "--quick"])
    assert not any(v in bench.STEP_GRAPHED for _, _, v, _ in bench.plan(quick))
    full = bench.parse_args(["--out", "/tmp/unused", "--lengths", "8192", "131072"])
    planned = {(seqlen, v) for _, seqlen, v, _ in bench.plan(full)}
    assert (8192, "op_fast_stepgraph") in planned and (8192, "attn_flash_stepgraph") in planned
    assert not any(v in bench.STEP_GRAPHED for s, v in planned if s > full.graph_max_len)


def test_column_kernels_compile_offline_and_report_resources(tmp_path, benchmarks_dir):
    # the inspection script builds for sm_90a without a GPU and reads back what ptxas gave
    pytest.importorskip("triton")
    script = benchmarks_dir / "inspect_column_kernels.py"
    out = tmp_path / "inspect.json"
    subprocess.run([sys.executable, script, "--block-j", "32", "--out", out], check=True,
                   capture_output=True, timeout=300)
    rows = json.loads(out.read_text())["rows"]
    assert [(r["kernel"], r["block_j"], r["num_warps"]) for r in rows] == [
        ("rfft", 32, 4), ("irfft", 32, 4)]
    for r in rows:
        assert 0 < r["registers"] <= 255 and r["mma"] > 0 and r["sass_instructions"] > 100
        assert r["st.global 8B"] + r["st.global <=4B"] + r["st.global 16B"] > 0


def test_filter_bench_device_time_sums_the_profiled_kernels(load_benchmark, monkeypatch):
    """bench_filter's --device-time timer adds up profile_rows' kernel rows (it returns the
    kernels and the copy ops as a pair: summing the pair itself stopped s15b's tune)."""
    bench = load_benchmark("bench_filter")
    calls = []
    monkeypatch.setattr(bench, "profile_rows", lambda step: (step(), [{"ms": 3.0}, {"ms": 1.0}],
                                                             [{"op": "copy_", "ms": 9.0}])[1:])
    assert bench.device_ms(lambda: calls.append(1), reps=2) == pytest.approx(2.0)
    assert calls == [1, 1]


def test_tune_split_configs_parse_and_set_the_build_knobs(load_benchmark, monkeypatch):
    tune = load_benchmark("tune_fourstep")
    from hyenadna.ops import columns

    default = columns.split_build()
    assert tune.split_build("16/8/5/100") == (16, (8, 5), 100)
    with pytest.raises(argparse.ArgumentTypeError, match="TILE/FWD_BLOCKS"):
        tune.split_build("16/8")
    for name in ("SPLIT_TILE", "SPLIT_MIN_BLOCKS", "SPLIT_CARVEOUT"):
        monkeypatch.setattr(columns, name, getattr(columns, name))  # restored after the test
    tune.use_split_build((32, (8, 0), 100))
    assert columns.split_build() == (32, (8, 0), 100)
    tune.use_split_build(None)
    assert columns.split_build() == default


def test_with_knobs_sets_existing_knobs_and_runs_the_script(load_benchmark, tmp_path,
                                                            monkeypatch, capsys):
    tool = load_benchmark("with_knobs")
    from hyenadna.ops import lean

    monkeypatch.setattr(lean, "KEEP_PREFIX_MAX_BYTES", lean.KEEP_PREFIX_MAX_BYTES)  # restored
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.setattr(sys, "path", list(sys.path))
    script = tmp_path / "show.py"
    script.write_text("import sys\nfrom hyenadna.ops import lean\n"
                      "print('seen', lean.KEEP_PREFIX_MAX_BYTES, sys.argv[1:])\n")
    tool.main(["--set", "hyenadna.ops.lean.KEEP_PREFIX_MAX_BYTES=1", str(script), "--flag", "x"])
    assert "seen 1 ['--flag', 'x']" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="has no knob KEEP_PREFIX_MAX_BYTE$"):
        tool.set_knob("hyenadna.ops.lean.KEEP_PREFIX_MAX_BYTE=1")  # a typo
    with pytest.raises(SystemExit, match="not a Python literal"):
        tool.set_knob("hyenadna.ops.lean.KEEP_PREFIX_MAX_BYTES=2**30")


def test_short_conv_bench_sets_and_restores_the_launch_knobs(load_benchmark):
    bench = load_benchmark("bench_short_conv")
    from hyenadna.ops import layout

    names = ("BLOCK_C", "BLOCK_L", "SHIFT_WARPS", "DW_WARPS", "TIME_MAJOR_TILE")
    before = [getattr(layout, n) for n in names]
    with bench.shape(16, 256, 8):
        assert [getattr(layout, n) for n in names] == [16, 256, 8, 8, (16, 256, 8)]
    assert [getattr(layout, n) for n in names] == before


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
@pytest.mark.parametrize("probe", ["probe_dsmem", "probe_cluster_fft", "probe_cluster_conv"])
def test_cluster_probe_sources_build_for_sm90(probe, load_benchmark, tmp_path):
    # the cluster probes' PTX (mapa, ld/st.shared::cluster, barrier.cluster) runs only on a GPU;
    # where a compiler is at hand, ptxas checks the source NVRTC would get
    pytest.importorskip("triton")  # bench_operator, which the probes import, needs it
    src = tmp_path / f"{probe}.cu"
    src.write_text(load_benchmark(probe).source())
    done = subprocess.run(["nvcc", "-arch=sm_90", "-cubin", "-o", str(tmp_path / "p.cubin"),
                           str(src)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("points", [512, 65536])
def test_cluster_fft_twin_equals_torch_fft_in_float64(points, load_benchmark):
    # the kernel's steps (8-point DFT across the cluster, twiddles, Stockham over each CTA's
    # points) in its CTA-major output layout, back in natural order: torch.fft's DFT
    pytest.importorskip("triton")  # bench_operator, which the probe imports, needs it
    probe = load_benchmark("probe_cluster_fft")
    g = torch.Generator().manual_seed(0)
    x = torch.complex(torch.randn(2, points, generator=g, dtype=torch.float64),
                      torch.randn(2, points, generator=g, dtype=torch.float64))
    got = probe.natural_order(probe.cluster_fft_torch(x))
    want = torch.fft.fft(x)
    assert ((got - want).abs().max() / want.abs().max()).item() < 1e-12


def test_cluster_conv_twin_equals_the_onchip_twin_in_float64(load_benchmark):
    # the cluster kernel's steps (its forward transform, the pair pass, its inverse split the
    # other way) give the on-chip engine's convolution; and the inverse alone is the DFT's
    pytest.importorskip("triton")  # bench_operator, which the probe imports, needs it
    probe = load_benchmark("probe_cluster_conv")
    from hyenadna.ops import onchip

    g = torch.Generator().manual_seed(0)
    mt = 8 * 64  # 8 CTAs of 64 points: n = 1024
    spec = torch.complex(torch.randn(2, mt, generator=g, dtype=torch.float64),
                         torch.randn(2, mt, generator=g, dtype=torch.float64))
    got = probe.cluster_ifft_torch(probe.cluster_major(spec))
    assert ((got - torch.fft.ifft(spec) * mt).abs().max() / got.abs().max()).item() < 1e-12
    w = torch.randn(2, 500, generator=g, dtype=torch.float64)
    k = torch.randn(2, 300, generator=g, dtype=torch.float64)
    k_spec = torch.fft.rfft(k, 2 * mt) / (2 * mt)
    got = probe.cluster_conv_forward_torch(w, k_spec)
    want = onchip.conv_forward_torch(w, k_spec)
    direct = torch.stack([torch.nn.functional.conv1d(
        torch.nn.functional.pad(w[i][None, None], (299, 0)), k[i].flip(0)[None, None])[0, 0]
        for i in range(2)])
    assert got.shape == w.shape
    assert ((got - want).abs().max() / want.abs().max()).item() < 1e-12
    assert ((got - direct).abs().max() / direct.abs().max()).item() < 1e-12
    g_in = torch.randn(2, 500, generator=g, dtype=torch.float64)
    for got, want in zip(probe.cluster_conv_backward_torch(g_in, w, k_spec, 300),
                         onchip.conv_backward_torch(g_in, w, k_spec, 300)):
        assert got.shape == want.shape
        assert ((got - want).abs().max() / want.abs().max()).item() < 1e-12


def test_cluster_pair_pass_takes_every_bin_once(load_benchmark):
    # each bin k of the cluster-major spectrum is written by exactly one pair, as k or MT - k
    pytest.importorskip("triton")
    probe = load_benchmark("probe_cluster_conv")
    cluster, q_len = 8, 64
    rank, k2, partner, k2m, both = probe.pair_slots(cluster, q_len)
    hits = torch.zeros(cluster, q_len, dtype=torch.long)
    hits.index_put_((rank, k2), torch.ones_like(rank), accumulate=True)
    hits.index_put_((partner[both], k2m[both]), torch.ones_like(rank[both]), accumulate=True)
    assert bool((hits == 1).all())
    mt = cluster * q_len
    assert bool(((rank + cluster * k2 + partner + cluster * k2m) % mt == 0).all())  # mirrors
