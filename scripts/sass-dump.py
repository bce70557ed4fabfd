"""Disassembles the machine code in NVIDIA shader-cache folders (see sass-dump.sh).

Usage: python3 sass-dump.py OUTDIR CACHEDIR...
Cache entries (.bin) hold zstd frames; a decompressed frame holds the code, found by the encoding of EXIT
(0x000000000000794d in the low 64 bits of a 128-bit instruction) and disassembled from the first offset that
nvdisasm accepts (-b SM90). Prints, per kernel, instruction counts by opcode inside the loop that holds the
most HMMAs, and the highest register number used.
"""
import collections, glob, os, re, shutil, subprocess, sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
here = os.path.dirname(os.path.abspath(__file__))
ZSTD = os.path.join(here, '..', '.gpu', 'tools', 'zstd')
env = dict(os.environ, LD_LIBRARY_PATH=os.path.join(here, '..', '.gpu', 'tools'))
nvdisasm = next((c for c in [shutil.which('nvdisasm'), '/usr/local/cuda/bin/nvdisasm'] + glob.glob('/usr/local/cuda*/bin/nvdisasm') if c and os.path.exists(c)), None)
EXIT = bytes.fromhex('4d79000000000000')

def frames(data):
    p = data.find(b'\x28\xb5\x2f\xfd')
    while p >= 0:
        r = subprocess.run([ZSTD, '-d', '-c', '-q'], input=data[p:], capture_output=True, env=env)
        if r.stdout:
            yield r.stdout
        p = data.find(b'\x28\xb5\x2f\xfd', p + 4)

def disasm(code):
    exits = [m.start() for m in re.finditer(re.escape(EXIT), code)]
    if not exits:
        return None
    shift = exits[-1] % 16
    end = min(len(code), exits[-1] + 16 + 4096)
    end -= (end - shift) % 16
    raw = os.path.join(out, 'c.bin')
    for start in range(shift, exits[0], 16):
        open(raw, 'wb').write(code[start:end])
        r = subprocess.run([nvdisasm, '-b', 'SM90', raw], capture_output=True, text=True)
        if r.returncode == 0 and 'EXIT' in r.stdout:
            return r.stdout
    return None

def summary(sass):
    ins = []
    for line in sass.splitlines():
        m = re.match(r'\s*/\*([0-9a-f]+)\*/\s+(@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)\s*(.*?);', line)
        if m:
            ins.append((int(m.group(1), 16), m.group(3), m.group(4)))
    regs = max([int(x) for _, _, a in ins for x in re.findall(r'\bR(\d+)\b', a)] or [0])
    loops = []
    for addr, op, args in ins:
        t = re.search(r'0x([0-9a-f]+)', args)
        if op.startswith('BRA') and t and int(t.group(1), 16) < addr:
            lo = int(t.group(1), 16)
            body = [i for i in ins if lo <= i[0] <= addr]
            loops.append((sum(1 for i in body if i[1].startswith('HMMA')), lo, addr, body))
    lines = [f'{len(ins)} instructions, highest register R{regs}']
    if loops:
        h, lo, hi, body = max(loops, key=lambda l: (l[0], -len(l[3])))
        c = collections.Counter(i[1].split('.')[0] for i in body)
        lines.append(f'main loop 0x{lo:x}-0x{hi:x}: {len(body)} instructions, ' + ', '.join(f'{k} {n}' for k, n in c.most_common(18)))
    return '\n'.join(lines)

n = 0
for d in sys.argv[2:]:
    for f in glob.glob(os.path.join(d, '**', '*.bin'), recursive=True):
        for fr in frames(open(f, 'rb').read()):
            s = disasm(fr)
            if not s:
                continue
            path = os.path.join(out, f'k{n}.sass')
            open(path, 'w').write(s)
            print(f'{path}: {summary(s)}')
            n += 1
if n == 0:
    print('no code found')
