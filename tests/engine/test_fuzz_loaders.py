"""Mutated dataset files (IDX, NPZ, CSV, image folders) either load (and the dataset can be
described) or raise NetBuilderError with a message; nothing else escapes, and nothing is
inflated beyond what its header may claim. The strategies here also drive
benchmarks/fuzz_long.py."""

from __future__ import annotations

import gzip
import shutil
import struct
import zlib

import numpy as np
import pytest
from fuzzcases import Case, load_or_refuse, refusal_and_peak_mb, scratch
from fuzzzip import DEFLATED, STORED, Member, npy_bytes, npy_header, zero_bomb, zip_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from imagefiles import bmp_bytes, idx_bytes, png_bytes, pnm_bytes

from engine.data import (
    BUILTINS,
    load_csv,
    load_dataset,
    load_idx,
    load_image_folder,
    load_mnist,
    load_npz,
    read_image,
)
from engine.data.images import MAX_SIDE, PNG_SIGNATURE
from engine.errors import DataError

RNG = np.random.default_rng(0)
IMG = RNG.integers(0, 256, (6, 4, 4)).astype(np.uint8)
LAB = np.array([0, 1, 2, 0, 1, 2], np.uint8)
DTYPES = ["<f4", ">f8", "<f2", "<i4", ">i8", "|u1", "|b1", "<c8", "<U3", "|S2", "<M8[s]",
          "|V4", [("a", "<f4"), ("b", "<i2")]]
BIG_TEXT = ["9" * 5000, "1e400", "-1e400", "1e-400", "nan", "inf", "-inf", "0x10", "1_000",
            "９", "\u0661", "1" * 25, "-" + "9" * 19, "1e18", "2e9", "-1"]


def damage(draw: st.DrawFn, raw: bytes) -> tuple[str, bytes]:
    """Leave, truncate or overwrite a few bytes."""
    kind = draw(st.sampled_from(["none", "none", "truncate", "flip", "append"]))
    if kind == "truncate" and raw:
        raw = raw[:draw(st.integers(0, len(raw) - 1))]
    elif kind == "flip" and raw:
        pos = draw(st.integers(0, len(raw) - 1))
        junk = draw(st.binary(min_size=1, max_size=6))
        raw = raw[:pos] + junk + raw[pos + len(junk):]
    elif kind == "append":
        raw += draw(st.binary(min_size=1, max_size=16))
    return kind, raw


def _fresh(name: str):
    d = scratch() / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    return d


def _exercise(ds) -> None:
    """What the GUI does with a freshly loaded dataset."""
    for part in (ds, ds.test):
        if part is None:
            continue
        assert part.describe() and len(part) > 0
        part.class_counts()
        assert part.x.dtype == np.float32


# ----- IDX ----------------------------------------------------------------------------------
@st.composite
def idx_cases(draw: st.DrawFn) -> Case:
    """An images and a labels IDX file, one of them damaged."""
    files = {"images": idx_bytes(IMG), "labels": idx_bytes(LAB)}
    which = draw(st.sampled_from(sorted(files)))
    raw = files[which]
    kind = draw(st.sampled_from(["magic", "ndim", "dims", "bytes", "gzip", "gzip bomb",
                                 "bad gzip", "dtype", "count"]))
    if kind == "magic":
        raw = draw(st.binary(min_size=4, max_size=4)) + raw[4:]
    elif kind == "ndim":
        raw = raw[:3] + bytes([draw(st.integers(0, 255))]) + raw[4:]
    elif kind == "dims":
        ndim = raw[3]
        dims = draw(st.lists(st.one_of(st.integers(0, 8), st.integers(0, 2**32 - 1)),
                             min_size=ndim, max_size=ndim))
        raw = raw[:4] + b"".join(struct.pack(">I", d) for d in dims) + raw[4 + 4 * ndim:]
    elif kind == "dtype":
        arr = (IMG if which == "images" else LAB).astype(draw(st.sampled_from(
            [np.int8, ">i2", ">i4", ">f4", ">f8"])))
        if draw(st.booleans()) and arr.dtype.kind == "f":
            arr.flat[0] = draw(st.sampled_from([np.nan, np.inf, 1e30, -1.0]))
        raw = idx_bytes(arr)
    elif kind == "count":
        other = IMG[:draw(st.integers(0, 7))]
        raw = idx_bytes(other if which == "images" else LAB[:len(other)] * 0 + 1)
    elif kind == "gzip":
        raw = gzip.compress(damage(draw, raw)[1])
    elif kind == "bad gzip":
        raw = damage(draw, gzip.compress(raw))[1]
    elif kind == "gzip bomb":
        dims = draw(st.sampled_from([(2**16, 2**15), (2**31, 4), (6, 4)]))
        head = bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
        size = draw(st.sampled_from([2**20, 32 * 2**20]))
        raw = gzip.compress(head + b"\0" * 64)[:10] + _raw_deflate(head) + zero_bomb(size)
        raw += struct.pack("<II", 0, (len(head) + size) & 0xFFFFFFFF)
    label, raw = damage(draw, raw) if kind not in ("gzip", "bad gzip", "gzip bomb") \
        else ("none", raw)
    files[which] = raw
    return Case(f"{which} {kind}; {label}", files)


def _raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush(zlib.Z_FULL_FLUSH)


def check_idx(case: Case) -> str:
    d = _fresh("idx")
    (d / "train-images-idx3-ubyte").write_bytes(case.data["images"])
    (d / "train-labels-idx1-ubyte").write_bytes(case.data["labels"])
    outcome, ds = load_or_refuse(lambda: load_mnist(d))
    if outcome == "ok":
        _exercise(ds)
    return outcome


# ----- NPZ ----------------------------------------------------------------------------------
def _npz_base() -> dict[str, np.ndarray]:
    return {"x": IMG[:, None].astype(np.float32) / 255, "y": LAB.astype(np.int64),
            "x_test": IMG[:2, None].astype(np.float32), "y_test": LAB[:2].astype(np.int64),
            "class_names": np.array(["zero", "one", "two"])}


@st.composite
def npz_cases(draw: st.DrawFn) -> Case:
    arrays: dict[str, bytes | np.ndarray] = dict(_npz_base())
    key = draw(st.sampled_from(sorted(arrays)))
    kind = draw(st.sampled_from(["dtype", "values", "shape", "objects", "header", "missing",
                                 "extra", "junk member", "truncated member", "duplicate",
                                 "inner bomb", "deflated", "junk", "labels"]))
    if kind == "dtype":
        arrays[key] = np.zeros(np.shape(arrays[key]), np.dtype(draw(st.sampled_from(DTYPES))))
    elif kind == "values":
        key = draw(st.sampled_from(["x", "y", "x_test", "y_test"]))
        a = np.array(arrays[key], dtype=draw(st.sampled_from(["<f4", "<f8", "<i8"])))
        value = draw(st.sampled_from([np.nan, np.inf, -np.inf, 1e300, -(2**62), 2**62])
                     if a.dtype.kind == "f" else st.sampled_from([-1, -(2**62), 2**62, 10**12]))
        with np.errstate(over="ignore"):
            a.flat[draw(st.integers(0, a.size - 1))] = value
        arrays[key] = a
    elif kind == "shape":
        arrays[key] = np.zeros(draw(st.lists(st.integers(0, 7), max_size=5)), np.float32)
    elif kind == "objects":
        arrays[key] = npy_bytes(np.array([None, {"k": 1}, print], dtype=object))
    elif kind == "header":
        descr = draw(st.sampled_from(["<f4", "O", "<i8", "|V0", "<U1000000000", "bogus", 7,
                                      [("a", "O")], [("a",)], "<f4" * 3]))
        shape = draw(st.one_of(
            st.lists(st.integers(-(2**70), 2**70), max_size=5).map(tuple),
            st.sampled_from([(2**31, 2**31), (2**62,), (-1,), (10**40,), "nope", [3], (True,),
                             (6, 1, 4, 4)])))
        arrays[key] = (npy_header(descr, shape, draw(st.sampled_from([False, True, 1])),
                                  draw(st.sampled_from([1, 2, 3, 9])))
                       + draw(st.binary(max_size=400)))
    elif kind == "missing":
        arrays.pop(key)
    elif kind == "extra":
        arrays[draw(st.text(max_size=12))] = np.zeros(draw(st.integers(0, 8)), np.float32)
    elif kind == "junk member":
        arrays[key] = draw(st.binary(max_size=200))
    elif kind == "truncated member":
        raw = npy_bytes(np.asarray(arrays[key]))
        arrays[key] = raw[:draw(st.integers(0, len(raw) - 1))]
    elif kind == "labels":
        arrays["y"] = np.array(draw(st.lists(st.integers(-5, 2**40), min_size=6, max_size=6)))
    elif kind == "junk":
        return Case(kind, draw(st.binary(max_size=300)))
    members = [Member(f"{k}.npy", v if isinstance(v, bytes) else npy_bytes(v),
                      DEFLATED if kind == "deflated" else STORED) for k, v in arrays.items()]
    if kind == "duplicate":
        members.append(Member(f"{key}.npy", npy_bytes(np.zeros(3, np.float32))))
    if kind == "inner bomb":
        size = draw(st.sampled_from([2**20, 16 * 2**20]))
        head = npy_header("|u1", (draw(st.sampled_from([size, 2**32, 100])),))
        members.append(Member("bomb.npy", _raw_deflate(head) + zero_bomb(size), DEFLATED,
                              claim=draw(st.sampled_from([len(head) + size, 2**32 - 1,
                                                          2**34, 50])),
                              raw=True))
    label, raw = damage(draw, zip_bytes(members))
    return Case(f"{kind} {key}; {label}", raw)


def check_npz(case: Case) -> str:
    p = scratch() / "case.npz"
    p.write_bytes(case.data)
    outcome, ds = load_or_refuse(lambda: load_npz(p))
    if outcome == "ok":
        _exercise(ds)
    return outcome


# ----- CSV ----------------------------------------------------------------------------------
cells = st.one_of(st.integers(-5, 5).map(str), st.floats(allow_nan=True).map(repr),
                  st.sampled_from(BIG_TEXT), st.sampled_from(["", " ", "a", "cat", "dog",
                                                            '"a,b"', '"', "label", "x;y"]),
                  st.text(max_size=6))


@st.composite
def csv_cases(draw: st.DrawFn) -> Case:
    ncols = draw(st.integers(1, 5))
    nrows = draw(st.integers(0, 8))
    ragged = draw(st.booleans()) and draw(st.booleans())
    rows = [[draw(cells) for _ in range(ncols + (draw(st.integers(-1, 1)) if ragged else 0))]
            for _ in range(nrows)]
    numeric = [[str(draw(st.integers(0, 3))) for _ in range(ncols)]
               for _ in range(draw(st.integers(0, 6)))]
    rows = numeric + rows if draw(st.booleans()) else rows + numeric
    if draw(st.booleans()):
        rows.insert(0, [draw(st.sampled_from(["a", "b", "label", "class", "y", "feat"]))
                        for _ in range(ncols)])
    delim = draw(st.sampled_from([",", ";", "\t", " "]))
    text = "\n".join(delim.join(r) for r in rows)
    raw = text.encode("utf-8", "surrogatepass")
    enc = draw(st.sampled_from(["utf-8", "utf-8", "bom", "latin-1 bytes", "crlf", "binary"]))
    if enc == "bom":
        raw = b"\xef\xbb\xbf" + raw
    elif enc == "latin-1 bytes":
        pos = draw(st.integers(0, len(raw)))
        raw = raw[:pos] + b"\xe9\xff" + raw[pos:]
    elif enc == "crlf":
        raw = raw.replace(b"\n", b"\r\n")
    elif enc == "binary":
        raw = draw(st.binary(max_size=200))
    label = draw(st.one_of(st.none(), st.just(""), st.integers(-6, 6),
                           st.sampled_from(["label", "a", "nope"])))
    task = draw(st.sampled_from([None, "classification", "regression", "bogus"]))
    return Case(f"{nrows}x{ncols} ragged={ragged} {enc} label={label!r} task={task}",
                (raw, label, task))


def check_csv(case: Case) -> str:
    raw, label, task = case.data
    p = scratch() / "case.csv"
    p.write_bytes(raw)
    outcome, ds = load_or_refuse(lambda: load_csv(p, label_column=label, task=task))
    if outcome == "ok":
        _exercise(ds)
    return outcome


# ----- image folders ------------------------------------------------------------------------
def _chunk(kind: bytes, body: bytes) -> bytes:
    return (struct.pack(">I", len(body)) + kind + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))


def _png(ihdr: bytes, idat: bytes, extra: bytes = b"") -> bytes:
    return (PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + extra + _chunk(b"IDAT", idat)
            + _chunk(b"IEND", b""))


side = st.one_of(st.integers(0, 6), st.sampled_from([MAX_SIDE, MAX_SIDE + 1, 2**31 - 1,
                                                     2**31, 2**32 - 1]))


@st.composite
def image_bytes(draw: st.DrawFn) -> tuple[str, bytes]:
    """One damaged image file (or something that is not an image at all)."""
    grey = IMG[0]
    kind = draw(st.sampled_from(["png header", "png palette", "png idat", "png filters",
                                 "png chunk length", "bmp header", "pnm header", "pnm text",
                                 "not an image", "jpeg", "empty", "damaged"]))
    if kind == "png header":
        w, h = draw(side), draw(side)
        ihdr = struct.pack(">IIBBBBB", w, h, draw(st.sampled_from([1, 2, 4, 8, 16, 7])),
                           draw(st.integers(0, 7)), draw(st.integers(0, 1)),
                           draw(st.integers(0, 1)), draw(st.integers(0, 2)))
        if draw(st.booleans()):
            ihdr = ihdr[:draw(st.integers(0, 12))]
        return kind, _png(ihdr, zlib.compress(draw(st.binary(max_size=100))))
    if kind == "png palette":
        ihdr = struct.pack(">IIBBBBB", 4, 4, 8, 3, 0, 0, 0)
        pal = draw(st.binary(max_size=40))
        idat = zlib.compress(b"".join(b"\0" + draw(st.binary(min_size=4, max_size=4))
                                      for _ in range(4)))
        return kind, _png(ihdr, idat, _chunk(b"PLTE", pal) if draw(st.booleans()) else b"")
    if kind == "png idat":
        ihdr = struct.pack(">IIBBBBB", 4, 4, 8, 0, 0, 0, 0)
        idat = draw(st.sampled_from(["random", "truncated", "short", "long", "bomb"]))
        good = zlib.compress(b"".join(b"\0" + grey[i].tobytes() for i in range(4)))
        body = {"random": draw(st.binary(max_size=60)), "truncated": good[:-3],
                "short": zlib.compress(b"\0" * 7), "long": zlib.compress(b"\0" * 100),
                "bomb": zlib.compress(b"\0" * 2**22, 9)}[idat]
        return f"{kind} {idat}", _png(ihdr, body)
    if kind == "png filters":
        filters = draw(st.lists(st.integers(0, 255), min_size=4, max_size=4))
        raw = b"".join(bytes([f]) + grey[i].tobytes() for i, f in enumerate(filters))
        return kind, _png(struct.pack(">IIBBBBB", 4, 4, 8, 0, 0, 0, 0), zlib.compress(raw))
    if kind == "png chunk length":
        good = png_bytes(grey)
        pos = len(PNG_SIGNATURE) + draw(st.sampled_from([0, 25]))
        return kind, good[:pos] + struct.pack(">I", draw(st.integers(0, 2**32 - 1))) \
            + good[pos + 4:]
    if kind == "bmp header":
        good = bytearray(bmp_bytes(np.stack([grey] * 3, -1), bpp=draw(st.sampled_from([8, 24,
                                                                                      32]))))
        field = draw(st.sampled_from([(10, "<I"), (14, "<I"), (18, "<i"), (22, "<i"),
                                      (28, "<H"), (30, "<I"), (46, "<I")]))
        value = draw(st.integers(-(2**31), 2**31 - 1) if field[1] == "<i"
                     else st.integers(0, 2 ** (8 * struct.calcsize(field[1])) - 1))
        struct.pack_into(field[1], good, field[0], value)
        return f"{kind} @{field[0]}", bytes(good)
    if kind == "pnm header":
        magic = draw(st.sampled_from(["P2", "P3", "P5", "P6", "P1", "P4", "P7"]))
        toks = [draw(st.sampled_from(["4", "0", "-4", "9" * 5000, "65535", "65536", "255",
                                      "x", "#c\n4", "1" * 30, str(MAX_SIDE)])) for _ in range(3)]
        body = draw(st.binary(max_size=120))
        return kind, f"{magic}\n{toks[0]} {toks[1]}\n{toks[2]}\n".encode() + body
    if kind == "pnm text":
        vals = draw(st.lists(st.sampled_from(["0", "255", "-7", "300", "x", "9" * 40,
                                              "9" * 5000, "1.5"]), max_size=20))
        return kind, b"P2\n4 4\n255\n" + " ".join(vals).encode()
    if kind == "not an image":
        return kind, draw(st.binary(max_size=100))
    if kind == "jpeg":
        return kind, b"\xff\xd8\xff\xe0" + draw(st.binary(max_size=20))
    if kind == "empty":
        return kind, b""
    good = draw(st.sampled_from([png_bytes(grey), pnm_bytes(grey), bmp_bytes(np.stack(
        [grey] * 3, -1)), pnm_bytes(np.stack([grey] * 3, -1), binary=False)]))
    label, raw = damage(draw, good)
    return f"{kind} {label}", raw


@st.composite
def image_folder_cases(draw: st.DrawFn) -> Case:
    files = {"a/0.png": png_bytes(IMG[0]), "a/1.pgm": pnm_bytes(IMG[1]),
             "b/0.bmp": bmp_bytes(np.stack([IMG[2]] * 3, -1)), "b/1.png": png_bytes(IMG[3])}
    target = draw(st.sampled_from(sorted(files)))
    label, raw = draw(image_bytes())
    suffix = draw(st.sampled_from([".png", ".pgm", ".ppm", ".bmp", ".gif", ".txt"]))
    files.pop(target)
    files[target.rsplit(".", 1)[0] + suffix] = raw
    return Case(f"{target}->{suffix}: {label}", files)


def check_images(case: Case) -> str:
    d = _fresh("images")
    for rel, raw in case.data.items():
        (d / rel).parent.mkdir(exist_ok=True)
        (d / rel).write_bytes(raw)
    outcome, ds = load_or_refuse(lambda: load_image_folder(d))
    if outcome == "ok":
        _exercise(ds)
    return outcome


# ----- built-in datasets with typed-in settings ----------------------------------------------
odd_values = st.one_of(st.integers(-3, 12), st.integers(-(2**70), 2**70),
                       st.floats(allow_nan=True, allow_infinity=True),
                       st.sampled_from([0.5, 1.5, True, False, None, "x", "", [], {}, 10**400]),
                       st.text(max_size=5))


@st.composite
def builtin_cases(draw: st.DrawFn) -> Case:
    """A built-in dataset asked for with odd settings (as typed in a model file or a form).
    ``n`` stays small or absurd: a valid but large set would only be slow."""
    name = draw(st.sampled_from(sorted(BUILTINS)))
    keys = [k for k in BUILTINS[name].defaults if k != "n"] + ["bogus"]
    params = draw(st.dictionaries(st.sampled_from(keys), odd_values, max_size=3))
    if "n" in BUILTINS[name].defaults:
        params["n"] = draw(st.sampled_from([1, 2, 7, 40, 0, -1, 10**6 + 1, 2**70, 1.5, "5",
                                            float("nan")]))
    for big in ("size", "steps"):
        if isinstance(params.get(big), int) and 64 < params[big] < 10**5:
            params[big] = 64
    if draw(st.booleans()):
        return Case(f"{name} {params}", {"name": name, **params})
    text = ",".join(f"{k}={v}" for k, v in params.items())
    return Case(f"'{name}:{text}'", f"{name}:{text}")


def check_builtin(case: Case) -> str:
    outcome, ds = load_or_refuse(lambda: load_dataset(case.data))
    if outcome == "ok":
        _exercise(ds)
    return outcome


TARGETS = {"idx": (idx_cases(), check_idx), "npz": (npz_cases(), check_npz),
           "csv": (csv_cases(), check_csv), "images": (image_folder_cases(), check_images),
           "builtin": (builtin_cases(), check_builtin)}
FAST = settings(max_examples=400, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FAST
@given(case=idx_cases())
def test_idx_files(case):
    check_idx(case)


def test_idx_with_a_zero_count_and_huge_other_sizes_is_refused():
    """Found by the fuzzer: 0 × 2,264,924,160 × 4,076,863,492 holds no bytes, but numpy cannot
    shape it (it raised a bare ValueError)."""
    images = bytes([0, 0, 8, 3]) + struct.pack(">III", 0, 0x87000000, 0xF3000004)
    case = Case("zero count, huge sizes", {"images": images, "labels": idx_bytes(LAB)})
    assert check_idx(case) == "refused"


@FAST
@given(case=npz_cases())
def test_npz_files(case):
    check_npz(case)


@FAST
@given(case=csv_cases())
def test_csv_files(case):
    check_csv(case)


@FAST
@given(case=image_folder_cases())
def test_image_folders(case):
    check_images(case)


@FAST
@given(case=builtin_cases())
def test_builtin_dataset_settings(case):
    check_builtin(case)


@pytest.mark.parametrize("target", sorted(set(TARGETS) - {"builtin"}))
def test_the_unchanged_files_load(target):
    good = {"idx": Case("good", {"images": idx_bytes(IMG), "labels": idx_bytes(LAB)}),
            "npz": Case("good", zip_bytes([Member(f"{k}.npy", npy_bytes(v))
                                           for k, v in _npz_base().items()])),
            "csv": Case("good", (b"a,b,label\n1,2,cat\n3,4,dog\n", None, None)),
            "images": Case("good", {"a/0.png": png_bytes(IMG[0]), "b/0.pgm": pnm_bytes(IMG[1])})}
    assert TARGETS[target][1](good[target]) == "ok"


def test_bombs_are_refused_before_they_are_inflated():
    """Files that announce (and really unpack to) gigabytes from a few MB on disk."""
    d = scratch()
    head = npy_header("|u1", (2**33,))
    big = d / "bomb.npz"
    big.write_bytes(zip_bytes([Member("x.npy", _raw_deflate(head) + zero_bomb(2**33),
                                      DEFLATED, claim=len(head) + 2**33, raw=True)]))
    assert refusal_and_peak_mb(lambda: load_npz(big))[0] == "refused"
    idx = d / "bomb-images-idx3-ubyte"
    gz_head = bytes([0, 0, 8, 3]) + struct.pack(">III", 2**17, 2**8, 2**8)
    idx.write_bytes(gzip.compress(b"")[:10] + _raw_deflate(gz_head) + zero_bomb(2**33))
    outcome, peak = refusal_and_peak_mb(lambda: load_idx(idx))
    assert outcome == "refused" and peak < 64
    small_head = bytes([0, 0, 8, 1]) + struct.pack(">I", 6)
    idx = d / "small-images-idx3-ubyte"
    idx.write_bytes(gzip.compress(b"")[:10] + _raw_deflate(small_head) + zero_bomb(2**30))
    outcome, peak = refusal_and_peak_mb(lambda: load_idx(idx))
    assert outcome == "refused" and peak < 64
    png = d / "bomb.png"
    png.write_bytes(_png(struct.pack(">IIBBBBB", 4, 4, 8, 0, 0, 0, 0),
                         b"\x78\x9c" + zero_bomb(2**30)))
    outcome, peak = refusal_and_peak_mb(lambda: read_image(png))
    assert outcome == "refused" and peak < 64
    with pytest.raises(DataError, match=r"unpack.*more than"):
        load_npz(big)
    with pytest.raises(DataError, match="announces"):
        load_idx(d / "bomb-images-idx3-ubyte")
