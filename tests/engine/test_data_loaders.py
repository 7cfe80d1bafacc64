"""File loaders on small files written here: IDX, NPZ, CSV, image folders; every refusal."""

import gzip
import io
import zipfile

import numpy as np
import pytest
from imagefiles import bmp_bytes, idx_bytes, png_bytes, pnm_bytes

import engine
from engine.data import (
    load_csv,
    load_dataset,
    load_idx,
    load_image_folder,
    load_mnist,
    load_npz,
    read_image,
)

DataError = engine.DataError


# ----- IDX ------------------------------------------------------------------------------------
@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, ">i2", ">i4", ">f4", ">f8"])
def test_idx_round_trip(tmp_path, compress, dtype):
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    if np.dtype(dtype) == np.uint8:
        arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    p = tmp_path / ("a.idx.gz" if compress else "a.idx")
    p.write_bytes(idx_bytes(arr, compress))
    out = load_idx(p)
    np.testing.assert_array_equal(out, arr)
    assert out.dtype.isnative


def test_idx_refusals(tmp_path):
    good = idx_bytes(np.zeros((3, 2, 2), np.uint8))
    cases = {
        "magic.idx": (b"\x01\x02" + good[2:], "wrong magic"),
        "type.idx": (good[:2] + b"\x07" + good[3:], "wrong magic"),
        "short.idx": (good[:-1], "holds 11 bytes"),
        "long.idx": (good + b"\x00", "holds 13 bytes"),
        "header.idx": (good[:6], "header is truncated"),
        "empty.idx": (b"", "is empty"),
        "dims.idx": (b"\x00\x00\x08\x07" + b"\x00" * 28, "7 dimensions"),
        "bad.gz": (b"\x1f\x8b" + b"garbage" * 5, "gzip data is corrupt"),
        "cut.gz": (gzip.compress(good)[:-12], "gzip data is corrupt"),
    }
    for name, (data, match) in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(DataError, match=match):
            load_idx(p)
    with pytest.raises(DataError, match="no such file"):
        load_idx(tmp_path / "missing.idx")


def _mnist_folder(tmp_path, n=12, n_test=5, compress=True):
    rng = np.random.default_rng(0)
    suffix = ".gz" if compress else ""
    x = rng.integers(0, 256, (n, 6, 6), dtype=np.uint8)
    y = rng.integers(0, 10, n).astype(np.uint8)
    (tmp_path / f"train-images-idx3-ubyte{suffix}").write_bytes(idx_bytes(x, compress))
    (tmp_path / f"train-labels-idx1-ubyte{suffix}").write_bytes(idx_bytes(y, compress))
    if n_test:
        xt = rng.integers(0, 256, (n_test, 6, 6), dtype=np.uint8)
        yt = rng.integers(0, 10, n_test).astype(np.uint8)
        (tmp_path / f"t10k-images-idx3-ubyte{suffix}").write_bytes(idx_bytes(xt, compress))
        (tmp_path / f"t10k-labels-idx1-ubyte{suffix}").write_bytes(idx_bytes(yt, compress))
    return x, y


def test_mnist_folder_with_test_part(tmp_path):
    x, y = _mnist_folder(tmp_path)
    ds = load_dataset(tmp_path)
    assert ds.x.shape == (12, 1, 6, 6) and ds.x.dtype == np.float32
    np.testing.assert_allclose(ds.x[:, 0] * 255, x, atol=1e-3)
    assert ds.y.tolist() == y.tolist() and ds.y.dtype == np.int64
    assert ds.test is not None and len(ds.test) == 5


def test_mnist_images_file_finds_its_labels(tmp_path):
    _mnist_folder(tmp_path, n_test=0, compress=False)
    ds = load_dataset(str(tmp_path / "train-images-idx3-ubyte"))
    assert len(ds) == 12 and ds.test is None


def test_mnist_refusals(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((4, 3, 3), np.uint8)))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(5, np.uint8)))
    with pytest.raises(DataError, match=r"4 images but .* 5 labels"):
        load_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="labels file"):
        load_mnist(tmp_path / "train-images-idx3-ubyte")
    lone = tmp_path / "solo"
    lone.mkdir()
    (lone / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(5, np.uint8)))
    with pytest.raises(DataError, match="no train-images"):
        load_mnist(lone)


# ----- NPZ ------------------------------------------------------------------------------------
def test_npz_with_test_part_and_class_names(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, x=np.ones((6, 2, 3), np.float64), y=np.arange(6) % 3,
             x_test=np.zeros((2, 2, 3)), y_test=np.array([0, 2]),
             class_names=np.array(["a", "b", "c"]), size=np.linspace(0, 1, 6))
    ds = load_dataset(p)
    assert ds.x.dtype == np.float32 and ds.x.shape == (6, 2, 3)
    assert ds.y.dtype == np.int64 and ds.class_names == ["a", "b", "c"]
    assert ds.arrays["size"].dtype == np.float32
    assert ds.test is not None and ds.test.y.tolist() == [0, 2]
    assert ds.name == "d"


def test_npz_refusals(tmp_path):
    p = tmp_path / "obj.npz"
    np.savez(p, x=np.array([{"a": 1}, None], dtype=object), y=np.zeros(2))
    with pytest.raises(DataError, match="Python objects"):
        load_npz(p)
    p = tmp_path / "nox.npz"
    np.savez(p, inputs=np.zeros((2, 2)), y=np.zeros(2))
    with pytest.raises(DataError, match=r"no array named 'x'.*inputs"):
        load_npz(p)
    p = tmp_path / "count.npz"
    np.savez(p, x=np.zeros((3, 2)), y=np.zeros(2))
    with pytest.raises(DataError, match="'y' has 2 samples"):
        load_npz(p)
    p = tmp_path / "str.npz"
    np.savez(p, x=np.array([["a", "b"]]))
    with pytest.raises(DataError, match="must hold numbers"):
        load_npz(p)
    p = tmp_path / "scalar.npz"
    np.savez(p, x=np.zeros((3, 2)), y=np.float32(1))
    with pytest.raises(DataError, match="single number"):
        load_npz(p)
    p = tmp_path / "empty.npz"
    p.write_bytes(b"")
    with pytest.raises(DataError, match="is empty"):
        load_npz(p)
    p = tmp_path / "junk.npz"
    p.write_bytes(b"PK\x03\x04 this is not a zip")
    with pytest.raises(DataError, match=r"not a readable .npz"):
        load_npz(p)
    p = tmp_path / "testonly.npz"
    np.savez(p, x=np.zeros((3, 2)), y_test=np.zeros(2))
    with pytest.raises(DataError, match="no 'x_test'"):
        load_npz(p)
    p = tmp_path / "shape.npz"
    np.savez(p, x=np.zeros((3, 2)), x_test=np.zeros((2, 5)))
    with pytest.raises(DataError, match="x_test"):
        load_npz(p)
    p = tmp_path / "complex.npz"
    np.savez(p, x=np.zeros((3, 2), np.complex64))
    with pytest.raises(DataError, match="numbers"):
        load_npz(p)


def test_npz_entry_holding_a_pickle_member_is_refused(tmp_path):
    """An .npz whose member is a pickled .npy (as allow_pickle would write)."""
    buf = io.BytesIO()
    np.save(buf, np.array([object()], dtype=object), allow_pickle=True)
    p = tmp_path / "pick.npz"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("x.npy", buf.getvalue())
    with pytest.raises(DataError, match="Python objects"):
        load_npz(p)


# ----- CSV ------------------------------------------------------------------------------------
def test_csv_header_and_label_column_by_name(tmp_path):
    p = tmp_path / "iris.csv"
    p.write_text("sepal,petal,species\n1.0,2.0,setosa\n3,4,virginica\n5,6e-1,setosa\n")
    ds = load_csv(p)
    assert ds.x.tolist() == [[1.0, 2.0], [3.0, 4.0], [5.0, 0.6000000238418579]]
    assert ds.class_names == ["setosa", "virginica"] and ds.y.tolist() == [0, 1, 0]
    assert ds.meta["columns"] == ["sepal", "petal"]
    with pytest.raises(DataError, match="not a number"):
        load_csv(p, label_column="sepal")  # then 'species' is a feature


def test_csv_without_header_uses_last_column(tmp_path):
    p = tmp_path / "plain.csv"
    p.write_text("0.5,1.5,2\n1,2,0\n\n3,4,1\n")
    ds = load_dataset(p)
    assert ds.task == "classification" and ds.y.tolist() == [2, 0, 1]
    assert ds.x.shape == (3, 2)
    first = load_csv(p, label_column=0)
    assert first.task == "regression"
    assert first.x.tolist() == [[1.5, 2.0], [2.0, 0.0], [4.0, 1.0]]
    forced = load_csv(p, label_column=-1, task="regression")
    assert forced.task == "regression" and forced.y.shape == (3, 1)
    none = load_csv(p, label_column="")
    assert none.y is None and none.task == "unlabelled" and none.x.shape == (3, 3)


def test_csv_semicolon_and_label_named_label(tmp_path):
    p = tmp_path / "semi.csv"
    p.write_text("label;a;b\n1;0.1;0.2\n0;0.3;0.4\n")
    ds = load_csv(p)
    assert ds.y.tolist() == [1, 0] and ds.x.tolist()[0] == pytest.approx([0.1, 0.2])


@pytest.mark.parametrize("text, match", [
    ("", "is empty"),
    ("\n\n  \n", "holds no rows"),
    ("a,b,label\n", "header but no data"),
    ("1,2,0\n3,4\n", "line 2: 2 values where the first row has 3"),
    ("a,b,label\n1,2,0\n3,x,1\n", r"line 3, column 'b': 'x' is not a number"),
    ("1,2,0\n3,nan,1\n", "NaN or Inf"),
    ("1,2,0.5\n3,4,1\n", None),
])
def test_csv_refusals(tmp_path, text, match):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    if match is None:
        assert load_csv(p).task == "regression"
        return
    with pytest.raises(DataError, match=match):
        load_csv(p)


def test_csv_other_refusals(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="no column named 'c'"):
        load_csv(p, label_column="c")
    with pytest.raises(DataError, match="column 5 does not exist"):
        load_csv(p, label_column=5)
    p.write_bytes(b"\xff\xfe\x00a,b")
    with pytest.raises(DataError, match="not UTF-8"):
        load_csv(p)
    p.write_text("1\n2\n")
    with pytest.raises(DataError, match="no feature columns"):
        load_csv(p)
    p.write_text("1,2,1.5\n3,4,0\n")
    with pytest.raises(DataError, match="whole numbers"):
        load_csv(p, task="classification")


# ----- images ---------------------------------------------------------------------------------
def _pattern(h=5, w=7, ch=None, seed=0):
    rng = np.random.default_rng(seed)
    shape = (h, w) if ch is None else (h, w, ch)
    return rng.integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize("filters", [(0,), (1,), (2,), (3,), (4,), (0, 1, 2, 3, 4)])
@pytest.mark.parametrize("ch", [None, 2, 3, 4])
def test_png_decoder(tmp_path, filters, ch):
    img = _pattern(ch=ch)
    p = tmp_path / "a.png"
    p.write_bytes(png_bytes(img, filters))
    out = read_image(p)
    want = img if ch is None else (img[..., 0] if ch == 2 else img[..., :3])
    np.testing.assert_array_equal(out, want)


def test_png_palette(tmp_path):
    pal = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0]], np.uint8)
    idx = np.array([[0, 1], [2, 1]], np.uint8)
    p = tmp_path / "p.png"
    p.write_bytes(png_bytes(idx, (4,), palette=pal))
    np.testing.assert_array_equal(read_image(p), pal[idx])


def test_png_refusals(tmp_path):
    img = _pattern()
    cases = {
        "inter.png": (png_bytes(img, interlace=1), "interlaced"),
        "deep.png": (png_bytes(img, depth=16), "16-bit"),
        "crc.png": (png_bytes(img)[:-20] + b"\x00" + png_bytes(img)[-19:], "checksum"),
        "cut.png": (png_bytes(img)[:40], "truncated|no image data|no header"),
    }
    for name, (data, match) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DataError, match=match):
            read_image(tmp_path / name)


def test_pnm_and_bmp_decoders(tmp_path):
    grey, rgb = _pattern(), _pattern(ch=3)
    files = {
        "p5.pgm": (pnm_bytes(grey), grey),
        "p2.pgm": (pnm_bytes(grey, binary=False), grey),
        "p6.ppm": (pnm_bytes(rgb), rgb),
        "p3.ppm": (pnm_bytes(rgb, binary=False), rgb),
        "wide.pgm": (pnm_bytes(grey.astype(np.uint16) * 257, maxval=65535), grey),
        "b24.bmp": (bmp_bytes(rgb), rgb),
        "b32.bmp": (bmp_bytes(rgb, 32, top_down=True), rgb),
        "b8.bmp": (bmp_bytes(grey, 8), grey),
        "grey24.bmp": (bmp_bytes(np.repeat(grey[..., None], 3, 2)), grey),
    }
    for name, (data, want) in files.items():
        (tmp_path / name).write_bytes(data)
        np.testing.assert_array_equal(read_image(tmp_path / name), want, err_msg=name)


def test_image_refusals(tmp_path):
    cases = {
        "photo.png": (b"\xff\xd8\xff\xe0JFIF", "JPEG"),
        "text.png": (b"hello", "not an image"),
        "p1.pgm": (b"P1\n2 2\n0 1 1 0\n", "only PGM/PPM"),
        "short.pgm": (b"P5\n4 4\n255\n" + b"\x00" * 5, "truncated"),
        "over.pgm": (b"P2\n2 1\n10\n3 11\n", "above its maximum"),
        "rle.bmp": (bmp_bytes(_pattern(ch=3))[:30] + b"\x01\x00\x00\x00"
                    + bmp_bytes(_pattern(ch=3))[34:], "compressed"),
        "huge.pgm": (b"P5\n100000 1\n255\n", "not supported"),
    }
    for name, (data, match) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DataError, match=match):
            read_image(tmp_path / name)


def _folder(tmp_path, classes=("cat", "dog"), per=3, rgb=False):
    root = tmp_path / "imgs"
    for k, c in enumerate(classes):
        (root / c).mkdir(parents=True)
        for i in range(per):
            img = np.full((4, 6, 3) if rgb else (4, 6), 40 * k + i, np.uint8)
            (root / c / f"{i}.png").write_bytes(png_bytes(img, (i % 5,)))
    return root


def test_image_folder(tmp_path):
    root = _folder(tmp_path)
    (root / "dog" / "notes.txt").write_text("ignored")
    (root / "dog" / ".DS_Store").write_bytes(b"\x00")
    (root / "cat" / "x.pgm").write_bytes(pnm_bytes(np.full((4, 6), 255, np.uint8)))
    ds = load_dataset(root)
    assert ds.class_names == ["cat", "dog"] and ds.x.shape == (7, 1, 4, 6)
    assert ds.class_counts().tolist() == [4, 3]
    assert ds.x.max() == 1.0 and ds.x[0, 0, 0, 0] == 0.0
    assert ds.is_image and ds.task == "classification"


def test_image_folder_mixed_colour_becomes_rgb_or_grey(tmp_path):
    root = _folder(tmp_path)
    (root / "cat" / "c.bmp").write_bytes(bmp_bytes(_pattern(4, 6, 3)))
    assert load_image_folder(root).x.shape == (7, 3, 4, 6)
    assert load_image_folder(root, grayscale=True).x.shape == (7, 1, 4, 6)


def test_image_folder_refusals(tmp_path):
    root = _folder(tmp_path)
    (root / "dog" / "big.png").write_bytes(png_bytes(np.zeros((5, 6), np.uint8)))
    with pytest.raises(DataError, match=r"6×5 but .* 6×4: all images must be the same size"):
        load_image_folder(root)
    (root / "dog" / "big.png").unlink()
    (root / "dog" / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    with pytest.raises(DataError, match="convert them to PNG"):
        load_image_folder(root)
    (root / "dog" / "photo.jpg").unlink()
    (root / "empty").mkdir()
    with pytest.raises(DataError, match="class folder holds no images"):
        load_image_folder(root)
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "a.png").write_bytes(png_bytes(np.zeros((2, 2), np.uint8)))
    with pytest.raises(DataError, match="one sub-folder per class"):
        load_image_folder(flat)


# ----- load_dataset dispatch ----------------------------------------------------------------
def test_load_dataset_specs(tmp_path):
    assert len(load_dataset("moons:n=30,noise=0.2")) == 30
    assert len(load_dataset({"name": "circles", "n": 20})) == 20
    p = tmp_path / "data" / "t.csv"
    p.parent.mkdir()
    p.write_text("1,2,0\n3,4,1\n")
    assert len(load_dataset("data/t.csv", base_dir=tmp_path)) == 2
    assert len(load_dataset({"path": "data/t.csv", "label_column": 0}, base_dir=tmp_path)) == 2
    with pytest.raises(DataError, match=r"unknown dataset 'imagenet'.*built-in datasets are.*"
                                        r"downloaded on first use: mnist, fashion_mnist"):
        load_dataset("imagenet")
    with pytest.raises(DataError, match="no such dataset file"):
        load_dataset("nowhere/x.csv")
    with pytest.raises(DataError, match="unknown dataset file type"):
        (tmp_path / "x.bin").write_bytes(b"1")
        load_dataset(tmp_path / "x.bin")
    with pytest.raises(DataError, match="'name'"):
        load_dataset({"n": 3})
    with pytest.raises(DataError, match="key=value"):
        load_dataset("moons:n")
    with pytest.raises(DataError, match="unknown setting"):
        load_dataset(p, bogus=1)
