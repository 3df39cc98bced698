"""Hostile pipeline code: each probe tries one way out of the sandbox and reports what happened.

The probes get the real `__import__` the way an attacker would (through a module's
`__builtins__`, past the guard-rails), then record `ok: …` or `denied: <error>` per attack. A
probe is a leak when it reports `ok`.
"""

from __future__ import annotations

import json

ESCAPE = ("imp = vars(pa)['_' + '_builtins__']['_' + '_import__']\n"
          "os = imp('os')\n")


def probe_pipeline(attacks: dict[str, str]) -> str:
    """pipeline.py that runs each attack (a Python expression or statement block setting `out`)."""
    lines = [ESCAPE, "rows = []", f"attacks = {json.dumps(attacks)}"]
    lines.append(
        "for name, code in attacks.items():\n"
        "    scope = {'_' + '_builtins__': imp('builtins'), 'imp': imp, 'os': os, 'pa': pa,\n"
        "             'mod': imp('importlib').import_module, 'out': None}\n"
        "    try:\n"
        "        imp('builtins').exec(code, scope)\n"
        "        rows.append((name, 'ok: ' + str(scope['out'])[:200]))\n"
        "    except BaseException as exc:\n"
        "        rows.append((name, 'denied: ' + repr(exc)[:300]))\n"
        "result = pa.table({'attack': [r[0] for r in rows], 'outcome': [r[1] for r in rows]})")
    return "\n".join(lines) + "\n"


def attacks(*, data_dir: str, server_pid: int, server_port: int, other_table: str,
            pg_socket_dir: str) -> dict[str, str]:
    """Every way out the issue names; `out` is what a successful attack would have obtained."""
    return {
        "server environ": f"out = open('/proc/{server_pid}/environ', 'rb').read()",
        "parent environ secrets": (
            "env = open('/proc/%d/environ' % os.getppid(), 'rb').read()\n"
            "assert b'RAT_' in env and (b'SECRET' in env or b'DATABASE' in env), 'no secrets'\n"
            "out = env"),
        "secret key file": f"out = open('{data_dir}/secret_key').read()",
        "secret key via pyarrow": (
            f"out = mod('pyarrow.fs').LocalFileSystem().open_input_stream('{data_dir}/secret_key')"
            ".read()"),
        "etc shadow": "out = open('/etc/shadow').read()",
        "postgres socket": (
            "s = imp('socket').socket(imp('socket').AF_UNIX)\n"
            f"s.connect('{pg_socket_dir}/.s.PGSQL.5432')\nout = 'connected'"),
        "postgres via psycopg": (
            f"out = imp('psycopg').connect('host={pg_socket_dir} user=postgres dbname=rat')"),
        "tcp to the server": (
            f"s = imp('socket').create_connection(('127.0.0.1', {server_port}), timeout=3)\n"
            "out = 'connected'"),
        "http to the server": (
            f"out = mod('urllib.request').urlopen('http://127.0.0.1:{server_port}/api/v1/me',"
            " timeout=3).read()"),
        "udp out": (
            "s = imp('socket').socket(imp('socket').AF_INET, imp('socket').SOCK_DGRAM)\n"
            "s.sendto(b'x', ('127.0.0.1', 53))\n"
            "s.connect(('127.0.0.1', 53)); s.send(b'x'); out = 'sent'"),
        "write /tmp": "open('/tmp/rat_pwned', 'w').write('x'); out = 'written'",
        "write data dir": f"open('{data_dir}/pwned', 'w').write('x'); out = 'written'",
        "write another table": (
            f"open('{other_table}/data/pwned.parquet', 'w').write('x'); out = 'written'"),
        "read another table": (
            f"out = imp('duckdb').connect().sql(\"SELECT count(*) FROM read_parquet("
            f"'{other_table}/data/*.parquet')\").fetchall()\nassert out, 'nothing read'"),
        "raw duckdb copy out": (
            "imp('duckdb').connect().execute(\"COPY (SELECT 1) TO '/tmp/rat_copy.csv'\")\n"
            "out = 'copied'"),
        "duckdb read secret": (
            f"out = imp('duckdb').connect().sql(\"SELECT * FROM read_text('{data_dir}/secret_key')"
            "\").fetchall()\nassert out, 'nothing read'"),
        "shell writes outside": (
            f"code = os.system('echo x > /tmp/rat_shell; echo y > {data_dir}/pwned_shell')\n"
            "assert code == 0, code\nout = 'written'"),
        "signal the parent": "os.kill(os.getppid(), 0); out = 'signalled'",
        "signal pid 1": "os.kill(1, 0); out = 'signalled'",
        "signal the server": f"os.kill({server_pid}, 0); out = 'signalled'",
        "8 GB allocation": "buf = bytearray(8 << 30); out = len(buf)",
        "3 GB allocation": "buf = bytearray(3 << 30); out = len(buf)",
        "setuid root": "os.setuid(0); out = os.getuid()",
        "new user namespace": (
            "libc = imp('ctypes').CDLL(None, use_errno=True)\n"
            "assert libc.unshare(0x10000000) == 0, imp('ctypes').get_errno()\nout = 'unshared'"),
        "symlink into storage": (
            f"os.symlink('/etc', '{other_table}/data/etclink'); out = 'linked'"),
    }
