set -u
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -c "import torch, triton; print(torch.__version__, triton.__version__)"
timeout 200 python3 benchmarks/profile_operator.py --lengths 8192 65536 1048576 --out $OUT/prof_b1.json
timeout 120 python3 benchmarks/profile_operator.py --lengths 1024 32768 --batch 8 --top 8 --out $OUT/prof_b8.json
