#!/usr/bin/env bash
# The GPU runs behind benchmarks/results/, one phase per device call, each inside ~10 minutes.
# Phases a-d ran on a 2×H100 lease (kind nvidia-h100-x2, two GPU queues side by side); from e on
# (issue 6) on one H100: `bash benchmarks/gpu_session.sh PHASE` with carry [".whl"].
#
#   (first run, 17:46: bench_operator.py and bench_train.py on GPU 1, pytest -m gpu on GPU 0;
#    its pretraining hit a pyfaidx BGZF bug, fixed in genome.py, so phases were re-cut:)
#   phase a: GPU 0 — pretrain tiny-1k on hg19 chr22 (held-out range as test), evaluate it;
#            GPU 1 — GUE sweep from random init, bench_score.py.
#   phase b: GPU 0 — GUE sweep from the chr22 backbone;
#            GPU 1 — pretrain_memory.py (1M step, longest small-32k length), splice with
#                    last-token pooling; then both GPUs: ddp_scaling.py (1 vs 2 GPUs).
#
# Inputs travel in git-ignored folders named in the device call's `carry`: .whl/ (pyfaidx,
# biopython, einops wheels for the image's Python 3.12; `benchmarks/gpu_wheels.sh [REF]` fetches
# them and, given a git ref, puts that commit's package in .old_head/ for the A/B phases),
# .gpu_data/ (hg19_chr22.fa.gz and the GUE CSVs copied from the project's shared data),
# .gpu_ckpt/ (phase b: the chr22 checkpoint that phase a returned). Everything comes back as one tarball under $OUT.
#
# Triton's compiled kernels can travel between calls (each call starts on a bare machine, and
# compiling took most of a call's GPU tests and 50 of op_old's 68 s in s15a): with
# KEEP_TRITON_CACHE=1 a phase also returns triton_cache.tgz (if under 40 MB); put it at
# .triton_cache/cache.tgz (git-ignored through .git/info/exclude) and carry ".triton_cache", and
# the next call starts from it.
set -u
phase=${1:?usage: gpu_session.sh a|b|c|d|e|f|g|h|i|j|k|l|m|n|o|p|q|r|s|t|u|v|w|x|y|z|attn|final|s6a|s6b|s6c|s6d|s6e|s6f|s6g|s6h|s6i|s6j|s6k|s6l|s6m|s6n|s6o|s7a|s7b|s7c|s7d|s7e|s7f|s7g|s7h|s7i|s7j|s7k|s7l|s8a|s8b|s8c|s8d|s8e|s9a|s9b|s9c|s10a|s10b|s11a|s11b|s12a|s12b|s13a|s13b|s13c|s13d|s14a|s14b|s14c|s14d|s14e|s15a|s15b|s15c|s15d|s16a|s16b|s16c|s16d|s16e|s17a|s17b|s17c|s17d|s18a|s18b|s18c|s18d|s18e|s18f|s19a|s19b|s19c|s19d|s19e|s20a|s20b}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
export TRITON_CACHE_DIR=/tmp/triton_cache
mkdir -p "$TRITON_CACHE_DIR"
[ -f .triton_cache/cache.tgz ] && tar xzf .triton_cache/cache.tgz -C "$TRITON_CACHE_DIR"
R=$OUT/r
mkdir -p "$R"
nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv >"$R/gpus.csv"
python3 -c "import torch, pytorch_lightning as pl; print(torch.__version__, pl.__version__)" \
    >"$R/versions.txt" 2>&1
G=.gpu_data/hg19_chr22.fa.gz
TEST='data.test_ranges=[chr22:46000000-51304566]'
VALID='data.valid_ranges=[chr22:44000000-46000000]'

on() {  # on GPU NAME SECONDS CMD...: run one job on one GPU with a time limit, log to $R/NAME.log
    local gpu=$1 name=$2 secs=$3
    shift 3
    echo "[$(date +%T)] start $name on GPU $gpu" >>"$R/timeline.txt"
    CUDA_VISIBLE_DEVICES=$gpu timeout "$secs" "$@" >"$R/$name.log" 2>&1
    local rc=$?
    echo "[$(date +%T)] end $name rc=$rc" >>"$R/timeline.txt"
}

graphed_ab() {  # graphed_ab SECONDS BUDGET REPS LENGTH...: the graphed operator and flash
    # attention at batch 1 and 8, on the cuFFT engine and on the default (auto) one, side by side
    local secs=$1 budget=$2 reps=$3 engine
    shift 3
    for engine in cufft auto; do
        HYENADNA_FFT_ENGINE=$engine on 0 graphed_$engine "$secs" python3 benchmarks/bench_operator.py \
            --batches 1 8 --reps "$reps" --lengths "$@" --variants op_fast_graphed attn_flash \
            --out "$R/graphed_$engine" --budget-s "$budget"
        rm -f "$R/graphed_$engine/results.png" "$R/graphed_$engine/results.md"
    done
}

stepgraph_b1() {  # stepgraph_b1 NAME SECONDS BUDGET VARIANT LENGTH...: one step-graphed
    # bench_operator variant at batch 1, 20 calls per cell, its JSON kept as $R/NAME.json
    local name=$1 secs=$2 budget=$3 variant=$4
    shift 4
    on 0 "$name" "$secs" python3 benchmarks/bench_operator.py --batches 1 --reps 20 \
        --lengths "$@" --graph-max-len "${@: -1}" --variants "$variant" --out "$R/$name" \
        --budget-s "$budget"
    mv "$R/$name/results.json" "$R/$name.json"
    rm -rf "$R/$name"
}

knob_ab() {  # knob_ab FILE SECONDS KNOB "LENGTH..." [OFF ON]: the step-graphed operator at
    # batch 1 with the module knob KNOB at OFF, ON, OFF, ON (default False and True; a process
    # each), logs appended to $R/FILE
    local file=$1 secs=$2 knob=$3 lengths=$4 off=${5:-False} on=${6:-True} value name
    name=${knob##*.}
    for value in "$off" "$on" "$off" "$on"; do
        # shellcheck disable=SC2086  # lengths: one argument each
        on 0 "op_${name}_$value" "$secs" python3 benchmarks/with_knobs.py --set "$knob=$value" \
            benchmarks/bench_operator.py --batches 1 --reps 20 --lengths $lengths \
            --graph-max-len 1048576 --variants op_fast_stepgraph --out "$R/op_${name}_$value" \
            --budget-s $((secs - 5))
        { echo "== $name=$value"; cat "$R/op_${name}_$value.log"; } >>"$R/$file"
        rm -rf "${R:?}/op_${name}_$value" "$R/op_${name}_$value.log"
    done
}

ratio_table() {  # ratio_table SECONDS CELL_LIMIT BUDGET: every batch-1 ratio from one
    # bench_operator run, operator and flash attention each one graph per step, 8k to 1M; its
    # JSON and table kept as $R/table.json, $R/table.md
    on 0 table "$1" python3 benchmarks/bench_operator.py --batches 1 --reps 10 --warmup 1 \
        --lengths 8192 65536 262144 1048576 --graph-max-len 1048576 --attn-max-len 1048576 \
        --cell-limit-s "$2" --variants op_fast_stepgraph attn_flash_stepgraph --out "$R/table" \
        --budget-s "$3"
    mv "$R/table/results.json" "$R/table.json"
    mv "$R/table/results.md" "$R/table.md"
    rm -rf "$R/table"
}

train_table() {  # the LM step of every config on the fast path, AdamW included (1M: memory);
    # its JSON kept as $R/train.json
    PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True on 0 train 100 python3 \
        benchmarks/bench_train.py --variants fast --reps 5 --out "$R/train" --budget-s 85 \
        --configs large-1m@1M large-1m@131k small-32k tiny-1k
    mv "$R/train/results.json" "$R/train.json"
    rm -rf "$R/train"
}

pack_logs() {  # every log into one logs.txt (fewer files to bring back)
    for f in "$R"/*.log; do echo "== $(basename "$f")"; cat "$f"; done >"$R/logs.txt"
    rm -f "$R"/*.log
}

if [ "$phase" = a ]; then
    (
        PT=(python3 cli.py pretrain --config configs/pretrain/tiny-1k.yaml --genome $G
            --set "$TEST" --set "$VALID" --max-steps 5000 --set train.val_every_steps=1000
            --set train.checkpoint_every_steps=1000 --set data.num_workers=12 --out-dir /tmp/pt)
        on 0 pretrain 370 "${PT[@]}" --max-time 00:00:05:30
        on 0 evaluate 70 python3 cli.py evaluate --checkpoint /tmp/pt/last.ckpt --genome $G \
            --set "$TEST" --set "$VALID" --max-windows 4000
    ) &
    (
        on 1 gue_random 330 python3 benchmarks/gue.py .gpu_data/GUE --pretrained none \
            --budget-minutes 4.5 --out-dir /tmp/gue_r --md "$R/gue_random.md"
        on 1 bench_score 140 python3 benchmarks/bench_score.py --devices cuda \
            --out "$R/score_gpu.json"
    ) &
    wait
    mkdir -p "$R/pretrain_run"
    cp /tmp/pt/config.yaml /tmp/pt/*.png /tmp/pt/*.json "$R/pretrain_run/" 2>/dev/null
    find /tmp/pt -name metrics.csv -exec cp {} "$R/pretrain_run/" \;
    # the checkpoint comes back on its own (phase b fine-tunes from it)
    cp /tmp/pt/last.ckpt "$OUT/chr22_tiny1k_last.ckpt" 2>/dev/null
fi

if [ "$phase" = b ]; then
    CK=.gpu_ckpt/chr22_tiny1k_last.ckpt
    (
        on 0 gue_pretrained 330 python3 benchmarks/gue.py .gpu_data/GUE --pretrained $CK \
            --budget-minutes 4.5 --out-dir /tmp/gue_p --md "$R/gue_pretrained.md"
    ) &
    (
        export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
        on 1 mem_1m 80 python3 benchmarks/pretrain_memory.py --config configs/pretrain/large-1m.yaml \
            --length 1048576 --batch 1 --checkpointing both --out "$R/pretrain_memory_1m.json"
        on 1 maxlen_small32k 70 python3 benchmarks/pretrain_memory.py \
            --config configs/pretrain/small-32k.yaml --find-max-length --checkpointing off \
            --out "$R/pretrain_maxlen_small32k.json"
        unset PYTORCH_CUDA_ALLOC_CONF
        on 1 gue_splice_last 150 python3 benchmarks/gue.py .gpu_data/GUE \
            --tasks splice/reconstructed --pretrained none --pretrained $CK \
            --set head.pooling=last --budget-minutes 2 --out-dir /tmp/gue_s \
            --md "$R/gue_splice_last.md"
    ) &
    wait
    on 0,1 ddp_scaling 110 python3 benchmarks/ddp_scaling.py --genome $G --devices-list 1,2 \
        --steps 30 --out "$R/ddp_scaling_small32k.json"
fi

if [ "$phase" = c ]; then  # issue 7: a 2-GPU step of large-1m at 1M nucleotides per GPU
    BIG=(python3 cli.py pretrain --config configs/pretrain/large-1m.yaml --genome $G
         --set "$TEST" --set "$VALID" --devices 2 --max-steps 3 --set model.l_max=1048578
         --set data.seq_len=1048576 --set train.seqlen_warmup_stages=0
         --set train.global_batch_size=2 --set data.max_eval_windows=2
         --set train.val_every_steps=3 --set data.num_workers=4)
    on 0,1 ddp_1m 150 "${BIG[@]}" --strategy ddp --out-dir /tmp/ddp1m
    on 0,1 fsdp_1m 150 "${BIG[@]}" --strategy fsdp --out-dir /tmp/fsdp1m
    on 0 pytest_score_gpu 60 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_score.py
    find /tmp/ddp1m /tmp/fsdp1m -name metrics.csv | while read -r f; do
        cp "$f" "$R/$(echo "$f" | cut -d/ -f3)_metrics.csv"; done
fi

if [ "$phase" = d ]; then  # the same DDP step after the eval-padding fix (d8a903a)
    on 0,1 ddp_1m_fixed 120 python3 cli.py pretrain --config configs/pretrain/large-1m.yaml \
        --genome $G --set "$TEST" --set "$VALID" --devices 2 --strategy ddp --max-steps 2 \
        --set model.l_max=1048578 --set data.seq_len=1048576 --set train.seqlen_warmup_stages=0 \
        --set train.global_batch_size=2 --set data.max_eval_windows=2 \
        --set train.val_every_steps=2 --set data.num_workers=4 --out-dir /tmp/ddp1m
    find /tmp/ddp1m -name metrics.csv -exec cp {} "$R/ddp_1m_metrics.csv" \;
fi

if [ "$phase" = e ]; then  # issue 6, second session (one H100): layout kernels, then training
    on 0 pytest_gpu 150 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_layout.py \
        tests/test_fftconv_fast.py tests/test_model.py tests/test_fftconv.py tests/test_score.py
    export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
    on 0 bench_train 330 python3 benchmarks/bench_train.py --out "$R/train" --budget-s 200
fi

if [ "$phase" = f ]; then  # issue 6, second session: the operator table and the profile
    on 0 pytest_gpu 60 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_fftconv_fast.py
    on 0 bench_operator 300 python3 benchmarks/bench_operator.py --out "$R/operator" \
        --budget-s 210
    export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
    on 0 bench_train_131k 120 python3 benchmarks/bench_train.py --out "$R/train_131k" \
        --configs large-1m@131k --budget-s 100
    unset PYTORCH_CUDA_ALLOC_CONF
    on 0 profile 90 python3 benchmarks/profile_operator.py --lengths 8192 65536 1048576 \
        --out "$R/profile_b1.json"
fi

if [ "$phase" = g ]; then  # issue 6, second session: every GPU test; train.compile end to end
    on 0 pytest_gpu_all 240 python3 -m pytest -q -m gpu -p no:cacheprovider tests
    on 0 pretrain_compile 150 python3 cli.py pretrain --config configs/pretrain/small-32k.yaml \
        --genome $G --set "$TEST" --set "$VALID" --max-steps 60 --set train.compile=true \
        --set train.seqlen_warmup_stages=0 --set train.val_every_steps=60 \
        --set train.checkpoint_every_steps=60 --set data.num_workers=8 --out-dir /tmp/ptc
    find /tmp/ptc -name metrics.csv -exec cp {} "$R/pretrain_compile_metrics.csv" \;
    on 0 bench_score 120 python3 benchmarks/bench_score.py --devices cuda \
        --out "$R/score_gpu.json"
fi

if [ "$phase" = h ]; then  # phase g's train.compile run again, after the filter-cache fix
    on 0 pretrain_compile_fixed 150 python3 cli.py pretrain \
        --config configs/pretrain/small-32k.yaml --genome $G --set "$TEST" --set "$VALID" \
        --max-steps 60 --set train.compile=true --set train.seqlen_warmup_stages=0 \
        --set train.val_every_steps=30 --set train.checkpoint_every_steps=60 \
        --set data.num_workers=8 --out-dir /tmp/ptc
    find /tmp/ptc -name metrics.csv -exec cp {} "$R/pretrain_compile_fixed_metrics.csv" \;
fi

if [ "$phase" = i ]; then  # issue 6, third session: the four-step engine, correctness + split
    on 0 pytest_gpu 150 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_fourstep.py \
        tests/test_fftconv_fast.py tests/test_layout.py
    on 0 sweep 200 python3 benchmarks/sweep_fourstep.py --out "$R/sweep_fourstep.json"
fi

if [ "$phase" = j ]; then  # issue 6, fourth session: auto = cuFFT again; both engines profiled
    on 0 pytest_gpu 140 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_fourstep.py \
        tests/test_fftconv_fast.py tests/test_layout.py tests/test_model.py
    on 0 sweep 200 python3 benchmarks/sweep_fourstep.py --out "$R/sweep_fourstep.json"
    on 0 probe_half_fft 60 python3 benchmarks/probe_half_fft.py --out "$R/probe_half_fft.json"
    on 0 operator 130 python3 benchmarks/bench_operator.py --batches 1 \
        --lengths 8192 65536 1048576 --budget-s 100 --out "$R/operator"
fi

if [ "$phase" = k ]; then  # issue 6, fourth session: tile the four-step column kernels
    on 0 tune 420 python3 benchmarks/tune_fourstep.py --out "$R/tune_fourstep.json"
fi

if [ "$phase" = l ]; then  # issue 6, fourth session: tuned tiles + one-pass conj products
    on 0 pytest_gpu 140 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_spectral.py \
        tests/test_fourstep.py tests/test_fftconv_fast.py tests/test_model.py
    on 0 sweep 230 python3 benchmarks/sweep_fourstep.py --n1 32 64 --lengths 8192 16384 32768 \
        65536 131072 262144 524288 1048576 --out "$R/sweep_fourstep.json"
    on 0 operator 150 python3 benchmarks/bench_operator.py --batches 1 \
        --lengths 8192 65536 1048576 --budget-s 110 --out "$R/operator"
fi

if [ "$phase" = m ]; then  # issue 6, fourth session: auto = four-step from L = 64k; full tables
    on 0 pytest_gpu_all 200 python3 -m pytest -q -m gpu -p no:cacheprovider tests
    on 0 bench_operator 330 python3 benchmarks/bench_operator.py --out "$R/operator" \
        --budget-s 230
fi

if [ "$phase" = n ]; then  # issue 6, fourth session: training throughput on the new default
    export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
    on 0 bench_train 460 python3 benchmarks/bench_train.py --out "$R/train" --budget-s 360
    unset PYTORCH_CUDA_ALLOC_CONF
    # phase m's op_fast_graphed at 8k (1.63 ms) was twice phase j's (0.88 ms): time it again
    on 0 operator_short 60 python3 benchmarks/bench_operator.py --batches 1 \
        --lengths 4096 8192 16384 --out "$R/operator_short"
fi

if [ "$phase" = o ]; then  # phase n's training table again, this time with its JSON fetched
    export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
    on 0 bench_train 460 python3 benchmarks/bench_train.py --out "$R/train" --budget-s 360
fi

if [ "$phase" = p ]; then  # issue 6, fifth session: where the short-L operator's time goes now
    rm -f "$R/gpus.csv"
    on 0 profile 200 python3 benchmarks/profile_operator.py --lengths 8192 65536 --top 70 \
        --out "$R/profile_b1.json"
fi

if [ "$phase" = q ]; then  # issue 6, fifth session: the fused implicit filter
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 200 python3 -m pytest -q -m gpu -p no:cacheprovider \
        tests/test_implicit_filter.py tests/test_model.py tests/test_fftconv_fast.py
    on 0 bench_filter 150 python3 benchmarks/bench_filter.py --out "$R/filter.json"
    on 0 profile 60 python3 benchmarks/profile_operator.py --lengths 8192 65536 --top 40 \
        --out "$R/profile_b1.json"
    on 0 operator 150 python3 benchmarks/bench_operator.py --batches 1 \
        --lengths 8192 65536 1048576 --budget-s 110 --out "$R/operator"
    rm -f "$R/operator/results.png"
fi

if [ "$phase" = r ]; then  # issue 6, fifth session: the fused filter's shapes and precision
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 150 python3 -m pytest -q -m gpu -p no:cacheprovider \
        tests/test_implicit_filter.py tests/test_model.py
    on 0 bench_filter 400 python3 benchmarks/bench_filter.py --tune --out "$R/filter.json"
fi

if [ "$phase" = s ]; then  # issue 6, fifth session: tuned fused filter; every GPU test, the table
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu_all 220 python3 -m pytest -q -m gpu -p no:cacheprovider tests
    on 0 bench_operator 340 python3 benchmarks/bench_operator.py --out "$R/operator" \
        --budget-s 240
fi

if [ "$phase" = t ]; then  # issue 6, fifth session: training with the fused filter
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 60 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_score.py \
        tests/test_implicit_filter.py
    export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
    on 0 bench_train 460 python3 benchmarks/bench_train.py --out "$R/train" --budget-s 360
fi

if [ "$phase" = u ]; then  # issue 6, fifth session: filter backward round 2; tests; profile
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 150 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_score.py \
        tests/test_implicit_filter.py
    on 0 bench_filter 300 python3 benchmarks/bench_filter.py --tune --tune-round 2 \
        --tune-lengths 131072 1048576 --out "$R/filter.json"
    on 0 profile 60 python3 benchmarks/profile_operator.py --lengths 8192 65536 --top 40 \
        --out "$R/profile_b1.json"
fi

if [ "$phase" = v ]; then  # issue 6, fifth session: final operator table, filter times
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 80 python3 -m pytest -q -m gpu -p no:cacheprovider \
        tests/test_implicit_filter.py
    on 0 bench_filter 90 python3 benchmarks/bench_filter.py --out "$R/filter.json"
    on 0 bench_operator 340 python3 benchmarks/bench_operator.py --out "$R/operator" \
        --budget-s 240
fi

if [ "$phase" = w ]; then  # issue 6, fifth session: final training table; fixes checked
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 80 python3 -m pytest -q -m gpu -p no:cacheprovider \
        tests/test_implicit_filter.py
    on 0 operator_graphed_check 90 python3 benchmarks/bench_operator.py --batches 1 \
        --lengths 8192 65536 --out "$R/operator_short"
    rm -f "$R/operator_short/results.png"
    on 0 bench_filter 100 python3 benchmarks/bench_filter.py --out "$R/filter.json"
    export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
    on 0 bench_train 300 python3 benchmarks/bench_train.py --out "$R/train" --budget-s 240
fi

if [ "$phase" = x ]; then  # issue 6, fifth session: phase w's GPU tests, with time to finish
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 330 python3 -m pytest -q -m gpu -p no:cacheprovider \
        tests/test_implicit_filter.py tests/test_score.py tests/test_model.py
fi

if [ "$phase" = y ]; then  # issue 6, fifth session: bias-grad and padding fusions: tests, tables
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 140 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_layout.py \
        tests/test_fftconv_fast.py tests/test_implicit_filter.py tests/test_model.py
    on 0 profile 50 python3 benchmarks/profile_operator.py --lengths 8192 65536 --top 40 \
        --out "$R/profile_b1.json"
    on 0 bench_operator 200 python3 benchmarks/bench_operator.py --batches 1 --out "$R/operator" \
        --budget-s 140
    rm -f "$R/operator/results.png"
fi

if [ "$phase" = z ]; then  # issue 6, fifth session: the training table on the final code
    rm -f "$R/gpus.csv" "$R/versions.txt"
    export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
    on 0 bench_train 230 python3 benchmarks/bench_train.py --out "$R/train" --budget-s 170
fi

if [ "$phase" = attn ]; then  # issue 6, fifth session: operator vs a whole attention layer too
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 bench_operator 260 python3 benchmarks/bench_operator.py --batches 1 8 \
        --lengths 8192 16384 32768 65536 131072 262144 --budget-s 200 --out "$R/operator" \
        --variants op_fast op_fast_graphed attn_flash attn_layer
    rm -f "$R/operator/results.png"
fi

if [ "$phase" = final ]; then  # issue 6, fifth session: the refactored filter backward compiled
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 150 python3 -m pytest -q -m gpu -p no:cacheprovider \
        tests/test_implicit_filter.py
    on 0 bench_filter 90 python3 benchmarks/bench_filter.py --lengths 131072 1048576 \
        --op-lengths 8192 --out "$R/filter.json"
fi

if [ "$phase" = s6a ]; then  # issue 6, sixth session: column-kernel ablation, baseline, profile
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 probe_cols 120 python3 benchmarks/probe_cols.py --out "$R/probe_cols.json"
    on 0 profile 90 python3 benchmarks/profile_operator.py --lengths 65536 1048576 --top 40 \
        --out "$R/profile_b1.json"
    on 0 bench_operator 200 python3 benchmarks/bench_operator.py --batches 1 --out "$R/operator" \
        --lengths 8192 65536 262144 1048576 --budget-s 170 \
        --variants conv_fast gated_fast op_fast op_fast_graphed attn_flash
    rm -f "$R/operator/results.png"
fi

if [ "$phase" = s6b ]; then  # issue 6, sixth session: column-kernel ablation, round 2
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 probe_cols 150 python3 benchmarks/probe_cols.py --out "$R/probe_cols2.json"
fi

if [ "$phase" = s6c ]; then  # issue 6, sixth session: table-twiddle column kernels: tests, tiles
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 200 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_fourstep.py \
        tests/test_spectral.py tests/test_fftconv_fast.py
    on 0 tune_fourstep 150 python3 benchmarks/tune_fourstep.py --out "$R/tune_fourstep.json"
    on 0 sweep_fourstep 120 python3 benchmarks/sweep_fourstep.py --n1 32 --profile-lengths \
        --lengths 8192 16384 32768 65536 --out "$R/sweep_fourstep.json"
fi

if [ "$phase" = s6d ]; then  # issue 6, sixth session: sin/cos kernels with paired stores, A/B
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 150 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_fourstep.py \
        tests/test_spectral.py
    on 0 probe_cols 120 python3 benchmarks/probe_cols.py --out "$R/probe_cols3.json"
    on 0 profile 90 python3 benchmarks/profile_operator.py --lengths 65536 1048576 --top 40 \
        --out "$R/profile_b1.json"
    on 0 bench_operator 200 python3 benchmarks/bench_operator.py --batches 1 --out "$R/operator" \
        --lengths 8192 65536 262144 1048576 --budget-s 170 \
        --variants conv_fast gated_fast op_fast op_fast_graphed attn_flash
    rm -f "$R/operator/results.png"
fi

if [ "$phase" = s6e ]; then  # issue 6, sixth session: the complex stride as a constant: A/B, table
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 150 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_fourstep.py
    on 0 probe_cols 120 python3 benchmarks/probe_cols.py --out "$R/probe_cols4.json"
    on 0 bench_operator 200 python3 benchmarks/bench_operator.py --batches 1 --out "$R/operator" \
        --lengths 8192 65536 262144 1048576 --budget-s 170 \
        --variants conv_fast gated_fast op_fast op_fast_graphed attn_flash
    rm -f "$R/operator/results.png" "$R/operator/results.md"
fi

if [ "$phase" = s6f ]; then  # issue 6, sixth session: can a wider split (N1 = 128) pay at 1M?
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 probe_cols 150 python3 benchmarks/probe_cols.py --out "$R/probe_cols_n1_128.json" \
        --n1 128 --cases 1048576:32 --tilings 16:4 32:4 64:4 64:8 128:8
    on 0 sweep_fourstep 200 python3 benchmarks/sweep_fourstep.py --n1 32 64 128 \
        --profile-lengths 1048576 --lengths 524288 1048576 --out "$R/sweep_fourstep_long.json"
fi

if [ "$phase" = s6g ]; then  # issue 6, sixth session: the operator table on the final code
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 bench_operator 230 python3 benchmarks/bench_operator.py --batches 1 --out "$R/operator" \
        --budget-s 170
    on 0 bench_short 120 python3 benchmarks/bench_operator.py --batches 1 --reps 50 \
        --lengths 8192 16384 32768 65536 --variants op_fast_graphed attn_flash \
        --out "$R/operator_short" --budget-s 90
    rm -f "$R/operator/results.png" "$R/operator_short/results.png" "$R/operator_short/results.md"
fi

if [ "$phase" = s6h ]; then  # issue 6, sixth session: the training table on the final code
    rm -f "$R/gpus.csv" "$R/versions.txt"
    export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
    on 0 bench_train 230 python3 benchmarks/bench_train.py --out "$R/train" --budget-s 170
fi

if [ "$phase" = s6i ]; then  # issue 6, sixth session: the GPU tests of everything touched, final
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 250 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_fourstep.py \
        tests/test_spectral.py tests/test_fftconv_fast.py tests/test_model.py tests/test_layout.py
fi

if [ "$phase" = s6j ]; then  # issue 6, sixth session: does the retiled four-step pay below 64k?
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 sweep_b8 150 python3 benchmarks/sweep_fourstep.py --n1 32 --batch 8 --profile-lengths \
        --lengths 4096 8192 16384 32768 65536 --out "$R/sweep_fourstep_b8.json"
    for engine in cufft fourstep; do
        HYENADNA_FFT_ENGINE=$engine on 0 graphed_$engine 100 python3 benchmarks/bench_operator.py \
            --batches 1 8 --reps 30 --lengths 8192 16384 32768 --variants op_fast_graphed \
            --out "$R/graphed_$engine" --budget-s 80
        rm -f "$R/graphed_$engine/results.png" "$R/graphed_$engine/results.md"
    done
fi

if [ "$phase" = s6k ]; then  # issue 6, sixth session: four-step from 32k: tests, training table
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 150 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_fourstep.py \
        tests/test_model.py
    export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
    on 0 bench_train 230 python3 benchmarks/bench_train.py --out "$R/train" --budget-s 170
fi

if [ "$phase" = s6l ]; then  # issue 6, sixth session: the batch-8 operator table, final code
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 bench_operator 260 python3 benchmarks/bench_operator.py --batches 8 --out "$R/operator_b8" \
        --budget-s 200
    rm -f "$R/operator_b8/results.png"
fi

if [ "$phase" = s6m ]; then  # issue 6, sixth session: batch 8 at 512k and 1M (phase s6l's OOMs)
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 bench_operator 200 python3 benchmarks/bench_operator.py --batches 8 \
        --lengths 524288 1048576 --compile-lengths --out "$R/operator_b8_long" --budget-s 150
    rm -f "$R/operator_b8_long/results.png"
fi

if [ "$phase" = s6n ]; then  # issue 6, sixth session: packed inverses: tests, A/B, tables
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 200 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_spectral.py \
        tests/test_fftconv_fast.py tests/test_model.py tests/test_score.py
    on 0 bench_packed 90 python3 benchmarks/bench_packed_inverse.py --out "$R/packed.json"
    on 0 bench_short 90 python3 benchmarks/bench_operator.py --batches 1 --reps 50 \
        --lengths 8192 16384 --variants op_fast_graphed attn_flash --out "$R/operator_short" \
        --budget-s 60
    rm -f "$R/operator_short/results.png" "$R/operator_short/results.md"
    export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
    on 0 bench_train 200 python3 benchmarks/bench_train.py --out "$R/train" --budget-s 150
fi

if [ "$phase" = s6o ]; then  # issue 6, sixth session: where 8k and 16k go now
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 profile 90 python3 benchmarks/profile_operator.py --lengths 8192 16384 --top 45 \
        --out "$R/profile_short_b1.json"
fi

if [ "$phase" = s7a ]; then  # issue 6, seventh session: the on-chip engine: tests, A/B, 8k op
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_onchip 150 python3 -m pytest -q -x -m gpu -p no:cacheprovider tests/test_onchip.py
    on 0 bench_onchip 120 python3 benchmarks/bench_onchip.py --out "$R/onchip.json"
    graphed_ab 100 80 50 1024 4096 8192
fi

if [ "$phase" = s7b ]; then  # issue 6, seventh session: on-chip kernels, radix 8/16, no stack
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_onchip 200 python3 -m pytest -q -x -m gpu -p no:cacheprovider tests/test_onchip.py \
        tests/test_fftconv_fast.py
    on 0 bench_onchip 150 python3 benchmarks/bench_onchip.py --out "$R/onchip.json"
    graphed_ab 100 80 50 2048 8192
fi

if [ "$phase" = s7c ]; then  # issue 6, seventh session: where 8k goes with the on-chip engine
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 profile 90 python3 benchmarks/profile_operator.py --lengths 8192 --top 60 \
        --out "$R/profile_8k_b1.json"
    on 0 profile_b8 90 python3 benchmarks/profile_operator.py --lengths 8192 --batch 8 --top 40 \
        --out "$R/profile_8k_b8.json"
fi

if [ "$phase" = s7d ]; then  # issue 6, seventh session: twiddle table, kept prefix: tests, A/B
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 240 python3 -m pytest -q -x -m gpu -p no:cacheprovider tests/test_onchip.py \
        tests/test_fftconv_fast.py tests/test_layout.py tests/test_model.py
    on 0 bench_onchip 150 python3 benchmarks/bench_onchip.py --out "$R/onchip.json"
    HYENADNA_FFT_ENGINE=auto on 0 graphed_auto 100 python3 benchmarks/bench_operator.py \
        --batches 1 8 --reps 50 --lengths 1024 4096 8192 --variants op_fast_graphed attn_flash \
        --out "$R/graphed_auto" --budget-s 80
    rm -f "$R/graphed_auto/results.png" "$R/graphed_auto/results.md"
fi

if [ "$phase" = s7e ]; then  # issue 6, seventh session: final code: tests, engine A/B, training
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 140 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_onchip.py \
        tests/test_model.py
    graphed_ab 100 80 100 1024 2048 8192
    export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
    on 0 bench_train 200 python3 benchmarks/bench_train.py --out "$R/train" --budget-s 160
fi

if [ "$phase" = s7f ] || [ "$phase" = s9b ]; then  # issue 6: the operator tables (batch 1
    # and 8) of the current code (seventh session: s7f; the next one with a GPU: s9b)
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 bench_operator 260 python3 benchmarks/bench_operator.py --batches 1 --out "$R/operator" \
        --budget-s 200
    on 0 bench_operator_b8 260 python3 benchmarks/bench_operator.py --batches 8 \
        --out "$R/operator_b8" --budget-s 200
    rm -f "$R/operator_b8/results.png"
fi

if [ "$phase" = s7g ]; then  # issue 6, seventh session: strided y/dy and dpost in the kernels
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 240 python3 -m pytest -q -x -m gpu -p no:cacheprovider tests/test_onchip.py \
        tests/test_fftconv_fast.py tests/test_model.py
    on 0 bench_onchip 100 python3 benchmarks/bench_onchip.py --out "$R/onchip.json" \
        --cases 1:8192 8:8192 256:1024
    graphed_ab 100 80 100 1024 8192 16384
    on 0 profile 90 python3 benchmarks/profile_operator.py --lengths 8192 --top 40 \
        --out "$R/profile_8k_b1.json"
fi

if [ "$phase" = s7h ]; then  # issue 6, seventh session: dpost fused, transposed dy copy, context
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 240 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_onchip.py \
        tests/test_fftconv_fast.py tests/test_model.py
    graphed_ab 100 80 100 1024 8192
    on 0 profile 90 python3 benchmarks/profile_operator.py --lengths 8192 --top 40 \
        --out "$R/profile_8k_b1.json"
fi

if [ "$phase" = s7i ]; then  # issue 6, seventh session: the two A/B benches after sharing code
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 bench_onchip 100 python3 benchmarks/bench_onchip.py --out "$R/onchip.json" \
        --cases 1:1024 8:8192
    on 0 bench_packed 100 python3 benchmarks/bench_packed_inverse.py --out "$R/packed.json" \
        --cases 1:1024
fi

if [ "$phase" = s7j ]; then  # issue 6, seventh session: explicit stream; filter shapes at short L
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_onchip 120 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_onchip.py
    on 0 tune_filter 200 python3 benchmarks/bench_filter.py --tune --device-time --tune-only \
        --tune-lengths 1024 8192 16384 --reps 10 --out "$R/tune_filter_short.json"
fi

if [ "$phase" = s7k ]; then  # issue 6, seventh session: final check (stream, short-L filter)
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 280 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_onchip.py \
        tests/test_implicit_filter.py tests/test_model.py
    graphed_ab 60 50 100 8192
fi

if [ "$phase" = s7l ]; then  # issue 6, seventh session: the engine paths after a dispatch refactor
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 200 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_onchip.py \
        -k "engine or mixer or thread"
fi

filter_stream_ab() {  # filter_stream_ab SECONDS BUDGET REPS LENGTH...: the graphed operator and
    # flash attention at batch 1 and 8: the package as it was at the session's start
    # (.old_head/, carried) and now, with the filter's side stream off and on
    # (AB_NAMES picks the runs, default "head fs0 fs1")
    local secs=$1 budget=$2 reps=$3 name
    shift 3
    for name in ${AB_NAMES:-head fs0 fs1}; do
        local pp=$PYTHONPATH
        [ "$name" = head ] && pp=/tmp/site:$PWD/.old_head:$PWD
        PYTHONPATH=$pp HYENADNA_FILTER_STREAM=${name#fs} on 0 graphed_$name "$secs" \
            python3 benchmarks/bench_operator.py --batches 1 8 --reps "$reps" --lengths "$@" \
            --variants op_fast_graphed attn_flash --out "$R/graphed_$name" --budget-s "$budget"
        rm -f "$R/graphed_$name/results.png" "$R/graphed_$name/results.md"
    done
}

if [ "$phase" = s8a ]; then  # issue 6, eighth session: filter on a side stream, short-conv sums
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 200 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_model.py \
        tests/test_layout.py tests/test_fftconv_fast.py
    filter_stream_ab 100 80 100 1024 8192
fi

if [ "$phase" = s8b ]; then  # issue 6, eighth session: where 8k's kernels go now
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 profile 100 python3 benchmarks/profile_operator.py --lengths 8192 --batch 1 --top 60 \
        --out "$R/profile_8k_b1.json"
fi

if [ "$phase" = s8c ]; then  # issue 6, eighth session: sums kernel on 2-D tiles, column_sum for
    # out_proj's and the MLP's bias gradients, fewer weight casts
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 200 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_model.py \
        tests/test_layout.py tests/test_fftconv_fast.py tests/test_reduce.py
    AB_NAMES="head fs1" filter_stream_ab 100 80 100 1024 8192
    on 0 profile 100 python3 benchmarks/profile_operator.py --lengths 8192 --batch 1 --top 60 \
        --out "$R/profile_8k_b1.json"
fi

ab_rounds() {  # ab_rounds ROUNDS LENGTH...: the graphed operator and flash attention at batch
    # 1 and 8, the session-start package (.old_head/) and the current one interleaved ROUNDS
    # times (single runs at batch 1 vary by 10-30%); one summary JSON, the runs deleted
    local rounds=$1 r name
    shift
    for r in $(seq "$rounds"); do
        for name in head new; do
            local pp=$PYTHONPATH
            [ "$name" = head ] && pp=/tmp/site:$PWD/.old_head:$PWD
            PYTHONPATH=$pp on 0 ab_${name}_$r 60 python3 benchmarks/bench_operator.py \
                --batches 1 8 --reps 100 --lengths "$@" --variants op_fast_graphed attn_flash \
                --out "$R/ab_${name}_$r" --budget-s 50
        done
    done
    python3 - "$R" <<'PY'
import glob, json, statistics, sys
root = sys.argv[1]
rows = {}
for path in sorted(glob.glob(f"{root}/ab_*_*/results.json")):
    name, rnd = path.split("/")[-2].split("_")[1:]
    for rec in json.load(open(path))["records"]:
        if rec.get("ms"):
            rows.setdefault(f"{name} {rec['variant']} b{rec['batch']} L{rec['L']}", []).append(
                rec["ms"])
json.dump({"device": json.load(open(path))["meta"].get("device"), "ms": rows},
          open(f"{root}/ab_summary.json", "w"), indent=1)
for key, ms in rows.items():
    print(f"{key:40s} median {statistics.median(ms):.4f}  runs {' '.join(f'{m:.4f}' for m in ms)}")
PY
    rm -rf "$R"/ab_*_*/ "$R"/ab_*_*.log
}

if [ "$phase" = s8d ]; then  # issue 6, eighth session: fused short-conv backward, float32 GEMMs
    rm -f "$R/gpus.csv" "$R/versions.txt"
    ab_rounds 3 1024 8192
    on 0 profile 100 python3 benchmarks/profile_operator.py --lengths 8192 --batch 1 --top 60 \
        --out "$R/profile_8k_b1.json"
    on 0 pytest_gpu 200 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_model.py \
        tests/test_layout.py tests/test_fftconv_fast.py tests/test_reduce.py
fi

if [ "$phase" = s8e ]; then  # issue 6, eighth session: the mixer casts x itself (dx in float32
    # from the GEMM)
    rm -f "$R/gpus.csv" "$R/versions.txt"
    ab_rounds 3 8192
    on 0 profile 100 python3 benchmarks/profile_operator.py --lengths 8192 --batch 1 --top 60 \
        --out "$R/profile_8k_b1.json"
    on 0 pytest_gpu 260 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_model.py \
        tests/test_layout.py tests/test_fftconv_fast.py tests/test_reduce.py \
        tests/test_onchip.py -k "not twin and not stockham"
fi

if [ "$phase" = s9a ]; then  # issue 6, next session with a GPU: check what the eighth and ninth
    # sessions changed without one (the mixer casting x itself, dx from an out_dtype GEMM; the
    # short-conv sums kernel's tensor mask), then the 8k A/B against the eighth session's start
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 260 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_model.py \
        tests/test_layout.py tests/test_fftconv_fast.py tests/test_reduce.py \
        tests/test_onchip.py -k "not twin and not stockham"
    ab_rounds 2 8192
    on 0 profile 70 python3 benchmarks/profile_operator.py --lengths 8192 --batch 1 --top 60 \
        --out "$R/profile_8k_b1.json"
fi

if [ "$phase" = s9c ]; then  # issue 6: training throughput against the official model, current code
    rm -f "$R/gpus.csv" "$R/versions.txt"
    export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
    on 0 bench_train 200 python3 benchmarks/bench_train.py --out "$R/train" --budget-s 160
fi

if [ "$phase" = s10a ]; then  # issue 6, tenth session: the step-graphed operator and attention
    # (one CUDA graph per fwd+bwd, no host latency) beside the two-graph operator and plain
    # attention, batch 1 and 8, three interleaved rounds of 100 timed calls
    rm -f "$R/gpus.csv" "$R/versions.txt"
    for r in 1 2 3; do
        on 0 stepgraph_$r 90 python3 benchmarks/bench_operator.py --batches 1 8 --reps 100 \
            --lengths 1024 4096 8192 16384 65536 --out "$R/stepgraph_$r" \
            --variants op_fast_graphed op_fast_stepgraph attn_flash attn_flash_stepgraph \
            --budget-s 75
        rm -f "$R/stepgraph_$r/results.png"
    done
fi

if [ "$phase" = s10b ]; then  # issue 6, tenth session: what the filter's side stream buys when
    # the whole step is one graph (8k), stream off and on interleaved, two rounds (not run yet:
    # the tenth session had no device time left for it)
    rm -f "$R/gpus.csv" "$R/versions.txt"
    for r in 1 2; do
        for fs in 0 1; do
            HYENADNA_FILTER_STREAM=$fs on 0 filterstream${fs}_$r 45 python3 \
                benchmarks/bench_operator.py --batches 1 8 --reps 100 --lengths 8192 \
                --variants op_fast_stepgraph --out "$R/filterstream${fs}_$r" --budget-s 30
            rm -f "$R/filterstream${fs}_$r/results.png"
        done
    done
fi

if [ "$phase" = s11a ]; then  # issue 6, eleventh session: the four-step engine's row stage on
    # chip (onchip.rows_fwd / rows_bwd): GPU tests, the conv sweep with rows on chip and on cuFFT
    # side by side (and the row kernels' register bound), then the step-graphed operator with
    # rows on cuFFT (HYENADNA_ONCHIP_ROWS=0) and on chip, and attention beside them
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 120 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_onchip.py \
        tests/test_fourstep.py -k "row or four_step or auto_engine or onchip_engine"
    HYENADNA_ONCHIP_ROWS=1 on 0 sweep_b1 130 python3 benchmarks/sweep_fourstep.py --n1 32 64 128 256 \
        --lengths 16384 32768 65536 131072 262144 1048576 --row-sm-threads 0 1024 \
        --profile-lengths 65536 --out "$R/sweep_b1.json"
    on 0 sweep_b8 60 python3 benchmarks/sweep_fourstep.py --batch 8 --n1 32 64 \
        --lengths 16384 32768 65536 --profile-lengths --out "$R/sweep_b8.json"
    for rows in 0 1; do
        HYENADNA_ONCHIP_ROWS=$rows on 0 stepgraph_rows$rows 55 python3 benchmarks/bench_operator.py \
            --batches 1 8 --reps 30 --lengths 32768 65536 131072 --graph-max-len 131072 \
            --variants op_fast_stepgraph --out "$R/stepgraph_rows$rows" --budget-s 45
        rm -f "$R/stepgraph_rows$rows/results.png"
    done
    on 0 stepgraph_attn 55 python3 benchmarks/bench_operator.py --batches 1 8 --reps 20 \
        --lengths 32768 65536 131072 --graph-max-len 131072 --variants attn_flash_stepgraph \
        --out "$R/stepgraph_attn" --budget-s 45
    rm -f "$R/stepgraph_attn/results.png"
fi

if [ "$phase" = s11b ]; then  # issue 6, next session with a GPU (not run yet): what s11a left
    # out. The long sweep (256k and 1M, where rows fit on chip only with N1 >= 64), then the
    # operator tables and training with the row kernels on by default.
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 sweep_long 150 python3 benchmarks/sweep_fourstep.py --n1 32 64 256 \
        --lengths 262144 1048576 --profile-lengths --out "$R/sweep_long.json"
    export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
    on 0 bench_train 200 python3 benchmarks/bench_train.py --out "$R/train" --budget-s 160
    unset PYTORCH_CUDA_ALLOC_CONF
    on 0 bench_operator 200 python3 benchmarks/bench_operator.py --batches 1 --out "$R/operator" \
        --budget-s 170
fi

if [ "$phase" = s12a ]; then  # issue 6, twelfth session: the four-step column kernels with
    # several signals per program, the short conv's backward loading x once. GPU tests, the
    # column tiling sweep, then old (.old_head, carried: the package before the change) against
    # new in the same call: the 64k profile and the step-graphed operator; attention beside.
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 100 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_fourstep.py \
        tests/test_layout.py tests/test_onchip.py \
        -k "column or tilings or short_conv or four_step or row or onchip_engine or auto_engine"
    on 0 tune 100 python3 benchmarks/tune_fourstep.py --lengths 65536 1048576 --out "$R/tune.json"
    for v in old new; do
        pkg=$PWD
        [ $v = old ] && pkg=$PWD/.old_head
        PYTHONPATH=/tmp/site:$pkg on 0 profile_$v 35 python3 benchmarks/profile_operator.py \
            --lengths 65536 --out "$R/profile_$v.json"
        PYTHONPATH=/tmp/site:$pkg stepgraph_b1 op_$v 45 35 op_fast_stepgraph 8192 65536 1048576
    done
    stepgraph_b1 attn 35 30 attn_flash_stepgraph 8192 65536
    # 256k: does N1 = 64 (rows on chip) beat N1 = 32 (rows on cuFFT) with the cheaper columns?
    on 0 sweep_256k 40 python3 benchmarks/sweep_fourstep.py --n1 32 64 --lengths 262144 \
        --profile-lengths --out "$R/sweep_256k.json"
    rm -f "$R/sweep_256k.json"
    pack_logs
fi

if [ "$phase" = s12b ]; then  # issue 6, next session with a GPU (not run yet): s12a measured
    # signals per program slower, so the column kernels are back as they were; its tune found the
    # inverse faster on 512-value tiles on that variant: the tiling sweep on the shipped kernels,
    # GPU tests, old (.old_head: the package before the short conv change; make it with
    # `mkdir .old_head && git archive f76297c hyenadna | tar x -C .old_head`, carry it) against new
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 100 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_fourstep.py \
        tests/test_layout.py -k "column or tilings or short_conv or four_step"
    on 0 tune 150 python3 benchmarks/tune_fourstep.py --lengths 65536 1048576 --out "$R/tune.json"
    for v in old new; do
        pkg=$PWD
        [ $v = old ] && pkg=$PWD/.old_head
        PYTHONPATH=/tmp/site:$pkg stepgraph_b1 op_$v 45 35 op_fast_stepgraph 8192 65536 1048576
    done
    stepgraph_b1 attn 35 30 attn_flash_stepgraph 8192 65536
    on 0 profile_new 35 python3 benchmarks/profile_operator.py --lengths 65536 \
        --out "$R/profile_new.json"
    pack_logs
fi

if [ "$phase" = s13a ]; then  # issue 6: what holds the column kernels (ncu), the inverse's
    # paired loads, and its tiling on the shipped kernels; .mid_head = the package of 1505814
    # (`mkdir .mid_head && git archive 1505814 hyenadna | tar x -C .mid_head`, carry it)
    rm -f "$R/gpus.csv" "$R/versions.txt"
    command -v ncu >/dev/null || export PATH=$PATH:/usr/local/cuda/bin
    NCU=(ncu --clock-control none --kernel-name regex:cols_kernel --launch-skip 3 --launch-count 3
         --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy
         --section LaunchStats --section WarpStateStats --section SchedulerStats)
    on 0 ncu_new 120 "${NCU[@]}" python3 benchmarks/launch_column_kernels.py --rfft 0 --irfft 0 32
    PYTHONPATH=/tmp/site:$PWD/.mid_head on 0 ncu_mid 90 "${NCU[@]}" python3 \
        benchmarks/launch_column_kernels.py --rfft 0 --irfft 0 32
    on 0 tune 150 python3 benchmarks/tune_fourstep.py --lengths 65536 1048576 --out "$R/tune.json"
    for v in mid new; do
        pkg=$PWD
        [ $v = mid ] && pkg=$PWD/.mid_head
        PYTHONPATH=/tmp/site:$pkg stepgraph_b1 op_$v 45 35 op_fast_stepgraph 8192 65536 1048576
    done
    stepgraph_b1 attn 35 30 attn_flash_stepgraph 8192 65536
    pack_logs
fi

if [ "$phase" = s13b ]; then  # issue 6: GPU tests of the kernels and the profile at 64k
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 150 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_fourstep.py \
        tests/test_layout.py
    on 0 profile_new 45 python3 benchmarks/profile_operator.py --lengths 65536 \
        --out "$R/profile_new.json"
    pack_logs
fi

if [ "$phase" = s13c ]; then  # issue 6: the CUDA column kernels (hyenadna/ops/columns.cu, one
    # thread per column) against the Triton ones: GPU tests, ncu, kernel and conv times, the
    # operator with either (HYENADNA_COLUMNS), the profile at 64k
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 120 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_columns.py \
        tests/test_fourstep.py
    command -v ncu >/dev/null || export PATH=$PATH:/usr/local/cuda/bin
    on 0 ncu 90 ncu --clock-control none --kernel-name regex:cols --launch-skip 4 \
        --launch-count 4 --section SpeedOfLight --section MemoryWorkloadAnalysis \
        --section Occupancy --section LaunchStats --section WarpStateStats \
        --section SchedulerStats python3 benchmarks/launch_column_kernels.py --rfft 0 --irfft 0 \
        --cuda
    on 0 tune 150 python3 benchmarks/tune_fourstep.py --lengths 65536 1048576 --out "$R/tune.json"
    for c in triton cuda; do
        HYENADNA_COLUMNS=$c stepgraph_b1 op_$c 45 35 op_fast_stepgraph 8192 65536 1048576
    done
    on 0 profile_cuda 45 python3 benchmarks/profile_operator.py --lengths 65536 \
        --out "$R/profile_cuda.json"
    pack_logs
fi

if [ "$phase" = s13d ]; then  # issue 6: the driver-API launcher that resolves cuLaunchKernel
    # once (torch's reopens libcuda per launch): GPU tests of every NVRTC kernel, the eager conv
    # A/B at 64k, the operator step-graphed and eager
    # (HYENADNA_LAUNCHER=driver for all of it; make it the default if the tests pass and it pays)
    rm -f "$R/gpus.csv" "$R/versions.txt"
    export HYENADNA_LAUNCHER=driver
    on 0 pytest_gpu 100 python3 -m pytest -q -x -m gpu -p no:cacheprovider tests/test_columns.py \
        tests/test_onchip.py tests/test_fourstep.py
    HYENADNA_LAUNCHER=torch on 0 tune_torch_launcher 60 python3 benchmarks/tune_fourstep.py \
        --lengths 65536 --out "$R/tune_torch_launcher.json"
    on 0 tune 60 python3 benchmarks/tune_fourstep.py --lengths 65536 --out "$R/tune.json"
    stepgraph_b1 op_cuda 45 35 op_fast_stepgraph 8192 65536 1048576
    on 0 op_eager 45 python3 benchmarks/bench_operator.py --batches 1 --reps 20 \
        --lengths 8192 65536 --variants op_fast conv_fast --out "$R/op_eager" --budget-s 35
    mv "$R/op_eager/results.json" "$R/op_eager.json"; rm -rf "$R/op_eager"
    pack_logs
fi

if [ "$phase" = s14a ]; then  # issue 6, next GPU session: s13d's launcher check folded in, and
    # the row split (HYENADNA_SPLIT_ROWS=1: rows past 8192 points on chip) against cuFFT's rows
    rm -f "$R/gpus.csv" "$R/versions.txt"
    HYENADNA_LAUNCHER=driver on 0 pytest_gpu 120 python3 -m pytest -q -x -m gpu \
        -p no:cacheprovider tests/test_rowsplit.py tests/test_columns.py tests/test_onchip.py \
        tests/test_fourstep.py
    for l in torch driver; do
        HYENADNA_LAUNCHER=$l on 0 tune_$l 60 python3 benchmarks/tune_fourstep.py --lengths 65536 \
            --out "$R/tune_$l.json"
    done
    for s in 0 1; do
        HYENADNA_SPLIT_ROWS=$s stepgraph_b1 op_split$s 60 45 op_fast_stepgraph 8192 65536 262144 \
            1048576
    done
    stepgraph_b1 attn 40 30 attn_flash_stepgraph 8192 65536 262144
    pack_logs
fi

if [ "$phase" = s14b ]; then  # issue 6: s14a's GPU tests again (its first stopped at a test's
    # own slip), where the 1M step goes with the row split on, and the launchers' eager A/B
    rm -f "$R/gpus.csv" "$R/versions.txt"
    HYENADNA_LAUNCHER=driver on 0 pytest_gpu 180 python3 -m pytest -q -m gpu -p no:cacheprovider \
        tests/test_rowsplit.py tests/test_columns.py tests/test_onchip.py tests/test_fourstep.py
    HYENADNA_SPLIT_ROWS=1 on 0 profile 90 python3 benchmarks/profile_operator.py \
        --lengths 65536 1048576 --top 30 --out "$R/profile_split1.json"
    for l in torch driver; do
        HYENADNA_LAUNCHER=$l on 0 eager_$l 90 python3 benchmarks/bench_operator.py --batches 1 \
            --reps 20 --lengths 8192 65536 --variants conv_fast op_fast --out "$R/eager_$l" \
            --budget-s 70
        mv "$R/eager_$l/results.json" "$R/eager_$l.json"
        rm -rf "$R/eager_$l"
    done
    pack_logs
fi

if [ "$phase" = s14c ]; then  # s14b's parts in the order they matter (GPU tests, where the
    # time goes with the row split on, the launchers' eager A/B), sized for a short call
    rm -f "$R/gpus.csv" "$R/versions.txt"
    HYENADNA_LAUNCHER=driver on 0 pytest_gpu 110 python3 -m pytest -q -m gpu -p no:cacheprovider \
        tests/test_rowsplit.py tests/test_columns.py tests/test_onchip.py tests/test_fourstep.py
    HYENADNA_SPLIT_ROWS=1 on 0 profile 70 python3 benchmarks/profile_operator.py \
        --lengths 65536 1048576 --top 30 --out "$R/profile_split1.json"
    for l in torch driver; do
        HYENADNA_LAUNCHER=$l on 0 eager_$l 45 python3 benchmarks/bench_operator.py --batches 1 \
            --reps 20 --lengths 8192 65536 --variants conv_fast op_fast --out "$R/eager_$l" \
            --budget-s 30
        mv "$R/eager_$l/results.json" "$R/eager_$l.json"
        rm -rf "$R/eager_$l"
    done
    pack_logs
fi

if [ "$phase" = s14d ]; then  # the row split fused into the CUDA column kernels: their GPU tests,
    # old (.old_head: the package with the split as separate kernels, `git archive` of the
    # commit before the fusion, carried) against new at 256k and 1M, then every batch-1 ratio
    # to 1M from one bench_operator run (new package; attention in the same run)
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 90 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_rowsplit.py \
        tests/test_columns.py -k "fused or split"
    PYTHONPATH=/tmp/site:$PWD/.old_head stepgraph_b1 op_old 60 45 op_fast_stepgraph 262144 \
        1048576
    ratio_table 200 200 180
    pack_logs
fi

if [ "$phase" = s14e ]; then  # after the fused split: where the 1M step's time goes now, and
    # the long convolution (eager, driver launcher) against its bytes floor at 64k-1M
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 profile 60 python3 benchmarks/profile_operator.py --lengths 1048576 --top 30 \
        --out "$R/profile_fused.json"
    on 0 conv 90 python3 benchmarks/bench_operator.py --batches 1 --reps 10 \
        --lengths 65536 262144 1048576 --variants conv_fast --out "$R/conv" --budget-s 80
    mv "$R/conv/results.json" "$R/conv.json"
    rm -rf "$R/conv"
    pack_logs
fi

if [ "$phase" = s15a ]; then  # issue 6, next session (not run yet): the kept filter spectrum in
    # one call (no torch.fft out= scaling pass; ~2 GB more for a moment at 1M) and the batch-1
    # mixer output left time-major for out_proj (no transposing products), old against new.
    # .old_head = the package before both (make it with
    # `mkdir .old_head && git archive 7bbc7ec hyenadna | tar x -C .old_head`, carry it); the
    # old profile is s14e's (results/fourstep/s14_h100_after/profile_fused.json).
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 100 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_columns.py \
        tests/test_rowsplit.py tests/test_fourstep.py tests/test_fftconv_fast.py \
        -k "fused or split or gated or mixer or dense"
    for v in old new; do
        pkg=$PWD
        [ $v = old ] && pkg=$PWD/.old_head
        PYTHONPATH=/tmp/site:$pkg stepgraph_b1 op_$v 70 55 op_fast_stepgraph 8192 65536 \
            262144 1048576
        # eager, for the peak memory the step graphs do not report
        PYTHONPATH=/tmp/site:$pkg on 0 mem_$v 60 python3 benchmarks/bench_operator.py \
            --batches 1 --reps 5 --lengths 1048576 --variants op_fast --out "$R/mem_$v" \
            --budget-s 45
        mv "$R/mem_$v/results.json" "$R/mem_$v.json"
        rm -rf "$R/mem_$v"
    done
    on 0 profile_new 70 python3 benchmarks/profile_operator.py --lengths 65536 1048576 \
        --top 30 --out "$R/profile_new.json"
    pack_logs
fi

if [ "$phase" = s15b ]; then  # issue 6, next session (not run yet): the fused split kernels'
    # block tile (columns.SPLIT_TILE) and what holds them (~57-60% of copy bandwidth at 1M in
    # s14e's profile, the plain column kernels 83%)
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 tune_split 150 python3 benchmarks/tune_fourstep.py --lengths 262144 1048576 \
        --skip-triton --split-configs 8/0/0/-1 16/0/0/-1 32/0/0/-1 --out "$R/tune_split.json"
    command -v ncu >/dev/null || export PATH=$PATH:/usr/local/cuda/bin
    on 0 ncu_split 120 ncu --clock-control none --kernel-name "regex:split|merge" \
        --launch-skip 4 --launch-count 4 --section SpeedOfLight --section MemoryWorkloadAnalysis \
        --section Occupancy --section WarpStateStats --section SchedulerStats \
        python3 benchmarks/launch_column_kernels.py --rfft --irfft --split --split-configs 16/0/0/-1 32/0/0/-1
    # the filter's backward (0.23 ms at 1 × 64k, its launch shapes tuned at 131k and 1M only)
    on 0 filter_tune 90 python3 benchmarks/bench_filter.py --tune --tune-round 2 \
        --tune-lengths 65536 --device-time --tune-only --out "$R/filter_tune.json"
    pack_logs
fi

if [ "$phase" = s15c ]; then  # issue 6: the fused split kernels' register cap and carveout
    # (s15b's ncu: latency-bound at 7 / 4 blocks per SM), and the one-node mixer casting x
    # itself (.old_head = `git archive 7f6719a hyenadna`: x cast before the mixer, dx cast
    # after it), old against new
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 130 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_columns.py \
        tests/test_fftconv_fast.py -k "other_builds or fused or mixer or dense or casts"
    on 0 tune_split 120 python3 benchmarks/tune_fourstep.py --lengths 1048576 --skip-triton \
        --split-configs 16/0/0/-1 16/0/0/100 16/8/0/100 16/0/5/100 16/8/5/100 16/8/6/100 \
        --out "$R/tune_split.json"
    for v in old new; do
        pkg=$PWD
        [ $v = old ] && pkg=$PWD/.old_head
        PYTHONPATH=/tmp/site:$pkg stepgraph_b1 op_$v 70 55 op_fast_stepgraph 65536 1048576
    done
    on 0 profile_new 60 python3 benchmarks/profile_operator.py --lengths 1048576 --top 30 \
        --out "$R/profile_new.json"
    pack_logs
fi

if [ "$phase" = s15d ]; then  # issue 6: the split kernels' capped build as the default (GPU
    # tests), the plain column kernels' register cap (tune only), and every batch-1 ratio to 1M
    # from one bench_operator run (attention in it)
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_gpu 110 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_columns.py \
        -k "float32 or other_builds or fused"
    on 0 tune_cols 90 python3 benchmarks/tune_fourstep.py --lengths 65536 1048576 --skip-triton \
        --cols-configs 0/5 0/6 8/6 --out "$R/tune_cols.json"
    ratio_table 200 200 180
    pack_logs
fi

if [ "$phase" = s16a ]; then  # issue 6: (1) the mixer keeping proj and u3 past 8k within a
    # byte budget (lean.KEEP_PREFIX_MAX_BYTES, default 0 = never) against the recompute, on the
    # operator and the small-32k LM step, alternating; (2) the four-step engine's chunks capped
    # to sizes whose column buffer fits L2 (fftconv_fast.FOURSTEP_CHUNK_ELEMS, 0 = off)
    rm -f "$R/gpus.csv" "$R/versions.txt"
    K=hyenadna.ops.lean.KEEP_PREFIX_MAX_BYTES
    for budget in 0 1073741824 0 1073741824; do
        on 0 op_keep$budget 90 python3 benchmarks/with_knobs.py --set "$K=$budget" \
            benchmarks/bench_operator.py --batches 1 8 --reps 20 --lengths 65536 262144 \
            --graph-max-len 262144 --variants op_fast_stepgraph --out "$R/op_keep$budget" \
            --budget-s 80
        cat "$R/op_keep$budget.log" >>"$R/op_keep_all.txt"
        rm -rf "$R/op_keep$budget" "$R/op_keep$budget.log"
    done
    C=hyenadna.ops.fftconv_fast.FOURSTEP_CHUNK_ELEMS
    for elems in 0 8388608 4194304 2097152 0; do
        on 0 op_chunk$elems 60 python3 benchmarks/with_knobs.py --set "$C=$elems" \
            benchmarks/bench_operator.py --batches 1 --reps 20 --lengths 65536 262144 1048576 \
            --graph-max-len 1048576 --variants op_fast_stepgraph --out "$R/op_chunk$elems" \
            --budget-s 55
        cat "$R/op_chunk$elems.log" >>"$R/op_chunk_all.txt"
        rm -rf "$R/op_chunk$elems" "$R/op_chunk$elems.log"
    done
    for budget in 0 1073741824; do
        on 0 train_keep$budget 75 python3 benchmarks/with_knobs.py --set "$K=$budget" \
            benchmarks/bench_train.py --configs small-32k --out "$R/train$budget" --budget-s 60
        mv "$R/train$budget/results.json" "$R/train_keep$budget.json"
        rm -rf "$R/train$budget"
    done
    pack_logs
fi

if [ "$phase" = s16b ]; then  # issue 6: the filter backward's loop software-pipelined
    # (implicit_filter.BWD_STAGES 1-3, kernel time) and the short conv kernels' launch shapes
    # against copy bandwidth; then the filter's GPU tests at every stage count
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 filter_tune 200 python3 benchmarks/bench_filter.py --tune --tune-round 3 --tune-only \
        --device-time --tune-lengths 65536 1048576 --out "$R/filter_tune.json"
    on 0 short_conv 150 python3 benchmarks/bench_short_conv.py --lengths 65536 1048576 \
        --out "$R/short_conv.json"
    on 0 pytest_gpu 150 python3 -m pytest -q -m gpu -p no:cacheprovider \
        tests/test_implicit_filter.py tests/test_layout.py tests/test_fourstep.py \
        -k "many_tiles or fused_matches or launch_shapes or short_conv or chunk_cap or fourstep"
    pack_logs
fi

if [ "$phase" = s16c ]; then  # issue 6, one call for a scarce device: s16a's two operator
    # A/Bs cut to one run per setting, then s16b's filter and short conv tunes (no tests)
    rm -f "$R/gpus.csv" "$R/versions.txt"
    K=hyenadna.ops.lean.KEEP_PREFIX_MAX_BYTES
    C=hyenadna.ops.fftconv_fast.FOURSTEP_CHUNK_ELEMS
    for knob in "$K=0" "$K=1073741824" "$C=8388608" "$C=4194304" "$C=2097152" "$K=0"; do
        name=op_${knob##*.}
        name=${name//=/_}
        on 0 "$name" 80 python3 benchmarks/with_knobs.py --set "$knob" \
            benchmarks/bench_operator.py --batches 1 --reps 20 --lengths 65536 262144 1048576 \
            --graph-max-len 1048576 --variants op_fast_stepgraph --out "$R/$name" --budget-s 70
        { echo "== $knob"; cat "$R/$name.log"; } >>"$R/op_all.txt"
        rm -rf "${R:?}/$name" "$R/$name.log"
    done
    on 0 filter_tune 150 python3 benchmarks/bench_filter.py --tune --tune-round 3 --tune-only \
        --device-time --tune-lengths 65536 1048576 --out "$R/filter_tune.json"
    on 0 short_conv 120 python3 benchmarks/bench_short_conv.py --lengths 65536 1048576 \
        --out "$R/short_conv.json"
    pack_logs
fi

if [ "$phase" = s16d ]; then  # issue 6, after s16c: the filter tune again (its accuracy step
    # had failed on the tl.range build), the LM step with the prefix kept (0 vs 1 GiB), GPU tests
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 filter_tune 150 python3 benchmarks/bench_filter.py --tune --tune-round 3 --tune-only \
        --device-time --tune-lengths 65536 1048576 --out "$R/filter_tune.json"
    K=hyenadna.ops.lean.KEEP_PREFIX_MAX_BYTES
    for budget in 0 1073741824; do
        on 0 train_keep$budget 110 python3 benchmarks/with_knobs.py --set "$K=$budget" \
            benchmarks/bench_train.py --configs small-32k large-1m@131k --out "$R/train$budget" \
            --budget-s 90
        mv "$R/train$budget/results.json" "$R/train_keep$budget.json"
        rm -rf "$R/train$budget"
    done
    on 0 pytest_gpu 130 python3 -m pytest -q -m gpu -p no:cacheprovider \
        tests/test_implicit_filter.py tests/test_fftconv_fast.py -k "filter or fused or keep or mixer"
    pack_logs
fi

if [ "$phase" = s16e ]; then  # issue 6: the new defaults (prefix kept within 1 GiB; filter
    # backward in tiles of 16, 3 stages) against the old ones set back by knobs, then every
    # batch-1 ratio from one bench_operator run (attention in it)
    rm -f "$R/gpus.csv" "$R/versions.txt"
    F=hyenadna.ops.implicit_filter
    for which in old new old new; do
        if [ $which = old ]; then
            knobs=(--set hyenadna.ops.lean.KEEP_PREFIX_MAX_BYTES=0 --set $F.BWD_BLOCK_L=32
                   --set $F.BWD_STAGES=1)
        else
            knobs=(--set $F.BWD_STAGES=3)  # the default: no change
        fi
        on 0 op_$which 60 python3 benchmarks/with_knobs.py "${knobs[@]}" \
            benchmarks/bench_operator.py --batches 1 --reps 20 --lengths 65536 262144 1048576 \
            --graph-max-len 1048576 --variants op_fast_stepgraph --out "$R/op_$which" --budget-s 50
        { echo "== $which"; cat "$R/op_$which.log"; } >>"$R/op_ab.txt"
        rm -rf "${R:?}/op_$which" "$R/op_$which.log"
    done
    ratio_table 220 200 200
    pack_logs
fi

if [ "$phase" = s17a ]; then  # issue 6, next session (not run yet): where the time goes with
    # s16's defaults (kernel profile at 64k and 1M), the SM-to-SM exchange's bandwidth (the
    # cluster plan's unknown), its steps (1)-(3) (a 64k-point FFT per cluster; the gated
    # convolution's forward and backward per cluster against the four-step engine's), the
    # short conv backward's program count, then the GPU tests the sixteenth session touched
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 dsmem 60 python3 benchmarks/probe_dsmem.py --out "$R/dsmem.json"
    on 0 cluster_fft 60 python3 benchmarks/probe_cluster_fft.py --out "$R/cluster_fft.json"
    on 0 cluster_conv 90 python3 benchmarks/probe_cluster_conv.py --out "$R/cluster_conv.json"
    on 0 profile 90 python3 benchmarks/profile_operator.py --lengths 65536 1048576 --top 30 \
        --out "$R/profile.json"
    on 0 short_conv 90 python3 benchmarks/bench_short_conv.py --lengths 65536 1048576 \
        --dw-targets 512 1024 4096 8192 --out "$R/short_conv.json"
    on 0 pytest_gpu 140 python3 -m pytest -q -m gpu -p no:cacheprovider \
        tests/test_implicit_filter.py tests/test_layout.py tests/test_fftconv_fast.py
    pack_logs
fi

if [ "$phase" = s17b ]; then  # issue 6: the four-step engine's spectra packed as bf16 pairs
    # between its kernels (fftconv_fast.PACKED_SPECTRA): the new GPU tests, then off against on
    # in the operator's step (alternating, twice) and the gated conv alone, then a profile
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_packed 120 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_fourstep.py \
        -k packed
    P=hyenadna.ops.fftconv_fast.PACKED_SPECTRA
    knob_ab op_ab.txt 60 $P "65536 262144 1048576"
    for which in off on; do
        value=False
        [ $which = on ] && value=True
        on 0 gated_$which 45 python3 benchmarks/with_knobs.py --set $P=$value \
            benchmarks/bench_operator.py --batches 1 --reps 20 --lengths 65536 1048576 \
            --variants gated_fast --out "$R/gated_$which" --budget-s 40
        { echo "== $which"; cat "$R/gated_$which.log"; } >>"$R/gated_ab.txt"
        rm -rf "${R:?}/gated_$which" "$R/gated_$which.log"
    done
    on 0 profile 80 python3 benchmarks/with_knobs.py --set $P=True benchmarks/profile_operator.py \
        --lengths 65536 1048576 --top 30 --out "$R/profile_packed.json"
    pack_logs
fi

if [ "$phase" = s17c ]; then  # issue 6: the column kernels' DFTs as generated FFTs
    # (columns.FFT_COLUMNS): the column and packed GPU tests, direct against FFT in the
    # operator's step (alternating, twice), then every batch-1 ratio from one run
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_cols 150 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_columns.py \
        tests/test_fourstep.py -k "packed or columns or cuda"
    knob_ab op_ab.txt 50 hyenadna.ops.columns.FFT_COLUMNS "65536 262144 1048576"
    ratio_table 200 180 185
    pack_logs
fi

if [ "$phase" = s17d ]; then  # issue 6, the session's last call: the packed tests s17c's
    # limit cut off, the LM step with this session's two changes on and off, and the generated
    # column FFTs against the direct DFTs at 1M (alternating, twice)
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_packed 90 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_fourstep.py \
        -k "packed or auto_engine_on_cuda"
    C=hyenadna.ops.columns.FFT_COLUMNS
    for which in new old; do
        knobs=(--set $C=True)
        [ $which = old ] && knobs=(--set $C=False --set hyenadna.ops.fftconv_fast.PACKED_SPECTRA=False)
        on 0 train_$which 90 python3 benchmarks/with_knobs.py "${knobs[@]}" \
            benchmarks/bench_train.py --configs small-32k large-1m@131k --out "$R/train_$which" \
            --budget-s 70
        mv "$R/train_$which/results.json" "$R/train_$which.json"
        rm -rf "$R/train_$which"
    done
    knob_ab op_1m_ab.txt 55 $C 1048576
    pack_logs
fi

if [ "$phase" = s18a ]; then  # issue 6: the two
    # knobs left off for want of a GPU call in session 17, each tested, then off against on (alternating,
    # twice) in the operator's step: the split/merge kernels' 8-point DFTs as generated FFTs
    # (columns.FFT_SPLIT, L > 128k) and the two-row stages' shared twiddles
    # (onchip.SHARED_TWIDDLES, the backward's row kernels and the on-chip engine's), then a
    # profile with both on
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_knobs 120 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_columns.py \
        tests/test_onchip.py -k "fused_split_kernels_match or shared_twiddles or row_kernels_match"
    knob_ab op_ab.txt 40 hyenadna.ops.columns.FFT_SPLIT "262144 1048576"  # split rows: L > 128k
    knob_ab op_ab.txt 45 hyenadna.ops.onchip.SHARED_TWIDDLES "8192 65536 1048576"
    on 0 profile 80 python3 benchmarks/with_knobs.py --set hyenadna.ops.columns.FFT_SPLIT=True \
        --set hyenadna.ops.onchip.SHARED_TWIDDLES=True benchmarks/profile_operator.py \
        --lengths 65536 1048576 --top 30 --out "$R/profile.json"
    pack_logs
fi

if [ "$phase" = s18b ]; then  # issue 6 (FFT_SPLIT now on): the
    # one-node mixer keeping u3 within 2 GiB per layer (lean.KEEP_U3_MAX_BYTES): its test, the
    # operator at 1M off against on, the packed chunks twice as large
    # (fftconv_fast.PACKED_CHUNK_SCALE), and the 8-layer LM step at 1M with u3 kept or not
    # (memory: must stay < 80 GB)
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_u3 60 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_fftconv_fast.py \
        -k "mixer"
    U=hyenadna.ops.lean.KEEP_U3_MAX_BYTES
    knob_ab op_u3_ab.txt 45 $U "262144 1048576" 0 2147483648
    knob_ab op_chunk_ab.txt 40 hyenadna.ops.fftconv_fast.PACKED_CHUNK_SCALE "262144 1048576" 1 2
    for budget in 0 2147483648; do
        PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True on 0 train1m_u3_$budget 90 \
            python3 benchmarks/with_knobs.py --set "$U=$budget" benchmarks/bench_train.py \
            --configs large-1m@1M --variants fast --reps 3 --out "$R/train1m_$budget" --budget-s 80
        mv "$R/train1m_$budget/results.json" "$R/train1m_u3_$budget.json"
        rm -rf "$R/train1m_$budget"
    done
    pack_logs
fi

if [ "$phase" = s18c ]; then  # issue 6: with s18a/s18b's wins on by default (FFT_SPLIT,
    # KEEP_U3_MAX_BYTES 2 GiB, PACKED_CHUNK_SCALE 2): every batch-1 ratio from one run, the LM
    # step of every config on the fast path, and a profile (dy now bf16, as in the bench)
    rm -f "$R/gpus.csv" "$R/versions.txt"
    ratio_table 200 180 185
    PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True on 0 train 110 python3 \
        benchmarks/bench_train.py --variants fast --reps 5 --out "$R/train" --budget-s 95 \
        --configs tiny-1k small-32k large-1m@131k large-1m@1M
    mv "$R/train/results.json" "$R/train.json"
    rm -rf "$R/train"
    on 0 profile 60 python3 benchmarks/profile_operator.py --lengths 65536 1048576 --top 30 \
        --out "$R/profile.json"
    pack_logs
fi

if [ "$phase" = s18d ]; then  # issue 6: the split kernels' register caps again, now that
    # their DFTs are generated FFTs (nvcc: the forward needs 56 registers uncapped, 9 blocks
    # per SM; the inverse 72 at 7 blocks with 252 bytes spilled), and packed chunks 4x
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 tune_split 150 python3 benchmarks/tune_fourstep.py --lengths 1048576 --skip-triton \
        --split-configs 16/8/6/100 16/9/6/100 16/9/7/100 16/8/7/100 16/9/5/100 16/10/6/100 \
        16/8/5/100 16/9/0/100 --out "$R/tune_split.json"
    knob_ab op_chunk_ab.txt 35 hyenadna.ops.fftconv_fast.PACKED_CHUNK_SCALE 1048576 2 4
    pack_logs
fi

if [ "$phase" = s18e ]; then  # issue 6, the session's last call, with s18d's two wins on by
    # default (SPLIT_MIN_BLOCKS (9, 6), PACKED_CHUNK_SCALE 4): their GPU tests, every batch-1
    # ratio from one run, the LM step of every config on the fast path (1M: memory)
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_split 70 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_columns.py \
        tests/test_fourstep.py -k "fused_split or chunk"
    ratio_table 200 180 185
    train_table
    pack_logs
fi

if [ "$phase" = s18f ]; then  # issue 6, on the session's last ~250 device-seconds: the
    # time-major proj (lean.TIME_MAJOR_PROJ) off against on at 1M (alternating, twice), then
    # its GPU tests for what time is left (s19a is the full phase)
    rm -f "$R/gpus.csv" "$R/versions.txt"
    knob_ab op_tm_ab.txt 30 hyenadna.ops.lean.TIME_MAJOR_PROJ 1048576
    on 0 pytest_tm 50 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_layout.py \
        tests/test_fftconv_fast.py -k "time_major and cuda"
    pack_logs
fi

if [ "$phase" = s19a ]; then  # issue 6, next session (written after s18e, not run): the
    # time-major proj (lean.TIME_MAJOR_PROJ: in_proj's GEMM writes (B, 3D, L) without its bias,
    # the short conv's kernels read and write time-contiguous rows only): its GPU tests, off
    # against on in the operator's step (alternating, twice), a profile with it on, and the LM
    # step off / on (small-32k: the batched GEMMs; large-1m at 1M)
    rm -f "$R/gpus.csv" "$R/versions.txt"
    T=hyenadna.ops.lean.TIME_MAJOR_PROJ
    on 0 pytest_tm 90 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_layout.py \
        tests/test_fftconv_fast.py -k "time_major"
    on 0 short_conv_tm 60 python3 benchmarks/bench_short_conv.py --time-major \
        --lengths 65536 1048576 --out "$R/short_conv_tm.json"
    knob_ab op_tm_ab.txt 45 $T "65536 262144 1048576"
    on 0 profile 60 python3 benchmarks/with_knobs.py --set $T=True benchmarks/profile_operator.py \
        --lengths 65536 1048576 --top 30 --out "$R/profile_tm.json"
    for value in False True; do
        PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True on 0 train_tm_$value 60 python3 \
            benchmarks/with_knobs.py --set $T=$value benchmarks/bench_train.py --variants fast \
            --reps 5 --configs small-32k large-1m@1M --out "$R/train_tm_$value" --budget-s 50
        mv "$R/train_tm_$value/results.json" "$R/train_tm_$value.json"
        rm -rf "$R/train_tm_$value"
    done
    pack_logs
fi

if [ "$phase" = s19b ]; then  # issue 6: the time-major short conv's launch shape
    # (layout.TIME_MAJOR_TILE, now on with TIME_MAJOR_PROJ): its GPU tests, every shape timed
    # in both layouts, the fastest time-major shape at 1M against the old 64 x 64 tile in the
    # operator's step (alternating, twice), and the long and gated convs against their floors
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_tile 90 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_layout.py \
        tests/test_fftconv_fast.py -k "launch_shapes or short_conv or time_major or mixer"
    on 0 short_conv_tiles 100 python3 benchmarks/bench_short_conv.py --time-major \
        --lengths 65536 1048576 --out "$R/short_conv_tiles.json"
    best=$(python3 -c "import json; rows = [r for r in json.load(open('$R/short_conv_tiles.json'))['rows'] if r['proj'] == 'B,C,L' and r['L'] == 1048576 and 'fwd_ms' in r]; b = min(rows, key=lambda r: r['fwd_ms'] + r['bwd_ms']); print((b['BLOCK_C'], b['BLOCK_L'], b['warps']))")
    echo "fastest time-major shape at 1M: $best" >>"$R/timeline.txt"
    knob_ab op_tile_ab.txt 50 hyenadna.ops.layout.TIME_MAJOR_TILE "65536 262144 1048576" \
        "(64, 64, 4)" "$best"
    on 0 floors 60 python3 benchmarks/bench_operator.py --batches 1 --reps 20 \
        --lengths 65536 1048576 --variants conv_fast gated_fast --out "$R/floors" --budget-s 55
    mv "$R/floors/results.json" "$R/floors.json"
    rm -rf "$R/floors"
    pack_logs
fi

if [ "$phase" = s19c ]; then  # issue 6, with TIME_MAJOR_TILE (16, 256, 4) on by default: it
    # against the two runners-up in the operator's step, then every batch-1 ratio from one run
    # and the LM step of every config (the session's final figures)
    rm -f "$R/gpus.csv" "$R/versions.txt"
    knob_ab op_tile_ab2.txt 50 hyenadna.ops.layout.TIME_MAJOR_TILE "65536 1048576" \
        "(32, 128, 4)" "(16, 256, 4)"
    knob_ab op_tile_ab3.txt 30 hyenadna.ops.layout.TIME_MAJOR_TILE "65536 1048576" \
        "(16, 128, 4)" "(16, 256, 4)"
    ratio_table 200 180 185
    train_table
    pack_logs
fi

if [ "$phase" = s19d ]; then  # issue 6: the filter on its side stream past 8k
    # (lean.FILTER_STREAM_MAX_LEN; at 64k and 256k the mixer is two nodes, so the filter's
    # backward can run beside the prefix's), and its backward on half the SMs
    # (implicit_filter.BWD_SM_SHARE) so that the prefix's kernels have the rest; GPU tests, two
    # A/Bs (alternating, twice), and a ratio table and the LM steps up to 131k with both on
    # (kept only if they win)
    rm -f "$R/gpus.csv" "$R/versions.txt"
    F=hyenadna.ops.lean.FILTER_STREAM_MAX_LEN
    S=hyenadna.ops.implicit_filter.BWD_SM_SHARE
    on 0 pytest_stream 60 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_model.py \
        tests/test_implicit_filter.py -k "side_stream or share"
    knob_ab op_stream_ab.txt 35 $F "65536 262144" 8192 262144
    for value in 1.0 0.5 1.0 0.5; do
        on 0 op_share_$value 25 python3 benchmarks/with_knobs.py --set $F=262144 \
            --set "$S=$value" benchmarks/bench_operator.py --batches 1 --reps 20 \
            --lengths 8192 65536 262144 --graph-max-len 1048576 --variants op_fast_stepgraph \
            --out "$R/op_share_$value" --budget-s 20
        { echo "== $S=$value"; cat "$R/op_share_$value.log"; } >>"$R/op_share_ab.txt"
        rm -rf "$R/op_share_$value" "$R/op_share_$value.log"
    done
    if [ "${S19D_TABLE:-1}" = 1 ]; then  # 0: the A/Bs only (a short device budget)
        on 0 table 190 python3 benchmarks/with_knobs.py --set $F=262144 --set $S=0.5 \
            benchmarks/bench_operator.py --batches 1 --reps 10 --warmup 1 \
            --lengths 8192 65536 262144 1048576 --graph-max-len 1048576 --attn-max-len 1048576 \
            --cell-limit-s 170 --variants op_fast_stepgraph attn_flash_stepgraph \
            --out "$R/table" --budget-s 175
        mv "$R/table/results.json" "$R/table.json"
        mv "$R/table/results.md" "$R/table.md"
        rm -rf "$R/table"
    fi
    on 0 train 35 python3 benchmarks/with_knobs.py --set $F=262144 --set $S=0.5 \
        benchmarks/bench_train.py --variants fast --reps 5 --out "$R/train" --budget-s 30 \
        --configs small-32k large-1m@131k tiny-1k
    mv "$R/train/results.json" "$R/train_stream.json"
    rm -rf "$R/train"
    pack_logs
fi

if [ "$phase" = s19e ]; then  # issue 6, on the session's last ~250 device-seconds: s19d's
    # two knobs together, BWD_SM_SHARE now applied on the filter's side stream only, against
    # the defaults: GPU tests, the operator at 64k and 1M (1M: the filter on the main stream,
    # where the share must not apply), the LM step up to 131k (alternating, twice)
    rm -f "$R/gpus.csv" "$R/versions.txt"
    F=hyenadna.ops.lean.FILTER_STREAM_MAX_LEN
    S=hyenadna.ops.implicit_filter.BWD_SM_SHARE
    on 0 pytest_scoped 40 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_model.py \
        tests/test_implicit_filter.py -k "side_stream and 65536 or share"
    for knobs in "$F=8192 $S=1.0" "$F=262144 $S=0.5" "$F=8192 $S=1.0" "$F=262144 $S=0.5"; do
        set -- $knobs
        on 0 op_both 28 python3 benchmarks/with_knobs.py --set "$1" --set "$2" \
            benchmarks/bench_operator.py --batches 1 --reps 20 --lengths 65536 1048576 \
            --graph-max-len 1048576 --variants op_fast_stepgraph --out "$R/op_both" --budget-s 24
        { echo "== $knobs"; cat "$R/op_both.log"; } >>"$R/op_both_ab.txt"
        rm -rf "$R/op_both" "$R/op_both.log"
    done
    for knobs in "$F=8192 $S=1.0" "$F=262144 $S=0.5" "$F=8192 $S=1.0" "$F=262144 $S=0.5"; do
        set -- $knobs
        on 0 train_both 18 python3 benchmarks/with_knobs.py --set "$1" --set "$2" \
            benchmarks/bench_train.py --variants fast --reps 5 --out "$R/train_both" \
            --budget-s 15 --configs small-32k large-1m@131k
        { echo "== $knobs"; cat "$R/train_both.log"; } >>"$R/train_both_ab.txt"
        rm -rf "$R/train_both" "$R/train_both.log"
    done
    pack_logs
fi

if [ "$phase" = s20a ]; then  # issue 6 (written after s19e, run in the twentieth session): the GPU
    # tests written or mended after the last call (the side-stream step with one grouping of the
    # filter's sums, on_filter_stream), then every batch-1 ratio and every LM step with all of
    # the nineteenth session's defaults (its table, s19c, predates the filter-stream change)
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 pytest_stream 60 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_model.py \
        tests/test_implicit_filter.py -k "side_stream or on_filter_stream or share"
    ratio_table 200 180 185
    train_table
    pack_logs
fi

if [ "$phase" = s20b ]; then  # issue 6: where the operator's time goes with every default of
    # the nineteenth session (kernel profile at 64k and 1M), then the whole GPU suite, verbose so
    # that a cut at the limit still shows how far it got
    rm -f "$R/gpus.csv" "$R/versions.txt"
    on 0 profile 75 python3 benchmarks/profile_operator.py --lengths 65536 1048576 --top 30 \
        --out "$R/profile.json"
    on 0 pytest_all 300 python3 -m pytest -v -m gpu -p no:cacheprovider -rfE tests/
    pack_logs
fi

# phases a-i return one tarball; later ones return their few files under $R directly
case $phase in [a-i]) tar czf "$OUT/results_$phase.tgz" -C "$R" . ;; esac
if [ "${KEEP_TRITON_CACHE:-0}" = 1 ]; then  # see the header: the compiled kernels, for the next call
    tar czf /tmp/triton_cache.tgz -C "$TRITON_CACHE_DIR" .
    if [ "$(stat -c %s /tmp/triton_cache.tgz)" -lt 40000000 ]; then
        cp /tmp/triton_cache.tgz "$R/triton_cache.tgz"
    else
        echo "triton cache $(du -h /tmp/triton_cache.tgz | cut -f1): too large to bring back"
    fi
fi
echo "== timeline"; cat "$R/timeline.txt"
for f in "$R"/*.log; do echo "== $(basename "$f")"; tail -n 12 "$f"; done
