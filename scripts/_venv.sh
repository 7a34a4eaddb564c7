# Sourced by scripts/train and scripts/test: create .venv on first use, reuse it afterwards.
# Reinstalls when pyproject.toml changes. Usage: ensure_venv EXTRAS (e.g. "" or "[dev]").
ensure_venv() {
    local root extras stamp want
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    extras="$1"
    cd "$root" || exit 1
    if [ ! -x .venv/bin/python ]; then
        echo "creating .venv (first use)..." >&2
        python3 -m venv .venv || exit 1
        .venv/bin/python -m pip install -q --upgrade pip >&2 || exit 1
    fi
    stamp=".venv/.neuroevo-installed${extras}"
    want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "installing neuroevo${extras} into .venv..." >&2
        .venv/bin/python -m pip install -q -e ".${extras}" >&2 || exit 1
        echo "$want" > "$stamp"
    fi
}
