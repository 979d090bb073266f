#!/usr/bin/env bash
# Builds the serving environment: MLServer + mlserver-mlflow in a venv of their own, since
# MLServer 1.7 caps fastapi below 0.116 and pulls starlette back, which the project venv
# cannot take. The model-facing packages (mlflow, scikit-learn, pandas, numpy) are pinned
# to the project venv's versions, read now, so a model saved there loads the same here.
# Usage: build-serving-env.sh PROJECT_PYTHON UV BASE_PYTHON SERVING_VENV
set -euo pipefail
project_py=$1 uv=$2 base_py=$3 venv=$4

version() { "$project_py" -c "import importlib.metadata as m; print(m.version('$1'))"; }

if [ ! -x "$venv/bin/python" ]; then
  # uv installs the packages, so the venv needs no pip of its own.
  "$base_py" -m venv --without-pip "$venv"
fi
# Keep the venv out of git whatever the checkout's .gitignore says.
echo '*' >"$venv/.gitignore"
# uvloop 0.21.0: MLServer 1.7 fails to start on later uvloop (MLServer#2286).
"$uv" pip install --python "$venv/bin/python" --quiet --compile-bytecode \
  "mlserver==1.7.1" "mlserver-mlflow==1.7.1" "uvloop==0.21.0" \
  "mlflow==$(version mlflow)" "scikit-learn==$(version scikit-learn)" \
  "pandas==$(version pandas)" "numpy==$(version numpy)"
