"""No silent loss or reuse in the book risk job (issue 14, points 3-5).

- Point 4: a duplicated ``position_id`` is an error naming the ids (``on_invalid="raise"``), or puts
  *every* row of that id in ``invalid`` (``"skip"``), across partitions, files, Dask and ResidentBook;
  every input row is accounted for, by id and count, in ``positions`` + ``invalid``.
- Point 3: a numeric column stored as text or booleans is refused, naming the column and the
  source; a text or boolean cell in an object column is an invalid row, never a number.
- Point 5: resuming verifies the partitions it reuses against checksums recorded at write time
  (a truncated partition is redone), and the input fingerprint covers the whole content (an edit in
  place keeping size and mtime resumes nothing).
"""

from __future__ import annotations

import collections
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_risk import MARKET, VALUATION, make_book

import gpu_hedge as gh
from gpu_hedge import BookError
from gpu_hedge._book.resident import ResidentBook
from gpu_hedge._book.risk import fingerprint
from gpu_hedge._book.schema import DUPLICATE_REASON, duplicate_ids

KW = dict(valuation_date=VALUATION, backend="numpy", scenarios="spot=-0.1;0.1")
OUTPUTS = ("positions", "by_underlying", "ladder", "trades", "invalid")


def _ids(values) -> collections.Counter:
    return collections.Counter(str(v) for v in values)


def _output_bytes(path):
    if path.is_dir():
        return [(f.name, f.read_bytes()) for f in sorted(path.iterdir())]
    return path.read_bytes()


def _same_outputs(a, b) -> None:
    for name in OUTPUTS:
        assert _output_bytes(a / f"{name}.parquet") == _output_bytes(b / f"{name}.parquet"), name


# --- point 4: duplicate position_id ---------------------------------------------------------------


def _book_with_duplicates() -> tuple[pd.DataFrame, dict[str, int]]:
    """200 rows (partitions of 50): ids duplicated within a partition, across partitions, three times,
    and one duplicate that also has a bad strike; plus rows with other problems."""
    book = make_book(200, seed=11)
    book["strike"] = book["strike"].astype(object)
    book["quantity"] = book["quantity"].astype(object)
    pid = book["position_id"].to_numpy(dtype=object).copy()
    pid[7] = pid[3]  # same partition
    pid[120] = pid[10]  # partitions 0 and 2
    pid[60] = pid[170] = pid[199]  # three rows, partitions 1, 3, 3
    pid[180] = pid[30]  # partitions 0 and 3: the second one also has a bad strike
    book["position_id"] = pid
    book.loc[180, "strike"] = -1.0
    book.loc[45, "strike"] = -2.0  # other problems on unique ids
    book.loc[90, "quantity"] = "12"  # text in a numeric column: not a number
    book.loc[91, "quantity"] = True  # a boolean: not a number
    dup = {pid[3]: 2, pid[10]: 2, pid[199]: 3, pid[30]: 2}
    return book, dup


def test_duplicate_ids_raise_naming_the_ids_and_rows():
    book, dup = _book_with_duplicates()
    with pytest.raises(BookError) as info:
        gh.risk(book, MARKET, chunk_rows=50, **KW)
    msg = str(info.value)
    assert "position_id is not unique: 4 id(s) on more than one row (9 rows)" in msg, msg
    for pid, n in dup.items():
        assert f"position_id {pid}: {n} rows" in msg, msg
    assert "position_id P00010: 2 rows (10, 120)" in msg and "position_id P00199: 3 rows (60, 170, 199)" in msg


def test_every_input_row_is_in_positions_or_invalid_by_id_and_count(tmp_path):
    book, dup = _book_with_duplicates()
    r = gh.risk(book, MARKET, chunk_rows=50, on_invalid="skip", out=tmp_path / "out", keep_positions=True, **KW)
    pos = pd.read_parquet(tmp_path / "out" / "positions.parquet")
    inv = pd.read_parquet(tmp_path / "out" / "invalid.parquet")
    pd.testing.assert_frame_equal(pos, r.positions)
    # the union of the outputs' ids, with their counts, is the input's
    assert _ids(pos["position_id"]) + _ids(inv["position_id"]) == _ids(book["position_id"])
    assert sorted([*inv["row"]]) == sorted(set(range(200)) - set(np.flatnonzero(book["position_id"].isin(pos["position_id"]))))
    s = r.summary
    assert s["rows_read"] == 200 == s["rows_valid"] + s["rows_invalid"] and s["rows_valid"] == len(pos)
    # every row of a duplicated id is set aside (not all but the first); none of them is priced
    assert not set(pos["position_id"]) & set(dup)
    duplicated = inv[inv["position_id"].isin(list(dup))]
    assert _ids(duplicated["position_id"]) == collections.Counter(dup)
    assert set(duplicated["reason"]) == {DUPLICATE_REASON} and set(duplicated["column"]) == {"position_id"}
    assert pos["position_id"].is_unique
    reasons = inv.set_index("row")["reason"]
    assert reasons[180] == DUPLICATE_REASON  # the id's problem is named first (its strike is bad too)
    assert reasons[45] == "strike must be finite and > 0"
    assert reasons[90] == "quantity is text, not a number" and reasons[91] == "quantity is a boolean, not a number"
    # the valid rows give the same results as a book of only them
    clean = gh.risk(book.drop(index=inv["row"]).astype({"strike": float, "quantity": float}), MARKET, chunk_rows=50, **KW)
    pd.testing.assert_frame_equal(r.positions, clean.positions)
    pd.testing.assert_frame_equal(r.by_underlying, clean.by_underlying)


@pytest.mark.parametrize("form", ["parquet", "csv", "arrow"])
def test_duplicates_across_partitions_of_files_and_tables(tmp_path, form):
    book = make_book(300, seed=5)
    book.loc[250, "position_id"] = book.loc[2, "position_id"]  # partitions 0 and 2
    if form == "parquet":
        src = tmp_path / "book.parquet"
        book.to_parquet(src)
    elif form == "csv":
        src = tmp_path / "book.csv"
        book.to_csv(src, index=False)
    else:
        src = pa.Table.from_pandas(book, preserve_index=False)
    with pytest.raises(BookError, match=r"position_id P00002: 2 rows \(2, 250\)"):
        gh.risk(src, MARKET, chunk_rows=100, **KW)
    r = gh.risk(src, MARKET, chunk_rows=100, on_invalid="skip", **KW)
    assert list(r.invalid["row"]) == [2, 250] and set(r.invalid["reason"]) == {DUPLICATE_REASON}
    assert _ids(r.positions["position_id"]) + _ids(r.invalid["position_id"]) == _ids(book["position_id"])


def test_duplicates_on_dask_workers():
    distributed = pytest.importorskip("dask.distributed")
    book, dup = _book_with_duplicates()
    ref = gh.risk(book, MARKET, chunk_rows=50, on_invalid="skip", **KW)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:  # fmt: skip
        r = gh.risk(book, MARKET, chunk_rows=50, on_invalid="skip", dask=client, **KW)
        with pytest.raises(BookError, match="not unique"):
            gh.risk(book, MARKET, chunk_rows=50, dask=client, **KW)
    pd.testing.assert_frame_equal(r.invalid, ref.invalid)
    pd.testing.assert_frame_equal(r.positions, ref.positions)
    assert _ids(r.invalid["position_id"]) - _ids(book["position_id"][~book["position_id"].isin(list(dup))]) == collections.Counter(dup)


def test_resident_book_applies_the_same_rule():
    book, dup = _book_with_duplicates()
    with pytest.raises(BookError, match="position_id is not unique"):
        ResidentBook(book, MARKET, backend="numpy", valuation_date=VALUATION)
    rb = ResidentBook(book, MARKET, backend="numpy", valuation_date=VALUATION, on_invalid="skip")
    r = gh.risk(book, MARKET, on_invalid="skip", **KW)
    assert rb.n == len(r.positions)
    pd.testing.assert_frame_equal(rb.invalid.sort_values("row", ignore_index=True), r.invalid.sort_values("row", ignore_index=True))
    pd.testing.assert_frame_equal(rb.by_underlying(), r.by_underlying, rtol=1e-12)


def test_duplicate_ids_compares_as_the_outputs_write_ids():
    assert duplicate_ids(pd.Series(np.arange(10))).empty
    assert duplicate_ids(pd.Series([3, 1, 3, 2, 1, 3])).to_dict() == {1: 2, 3: 3}
    assert duplicate_ids(pd.Series(["b", "a", "b", None, None])).to_dict() == {"b": 2}  # missing ids are their own reason
    assert duplicate_ids(pd.Series([1, "1", None, 2.5, "x"], dtype=object)).to_dict() == {"1": 2}  # both written as "1"
    assert duplicate_ids(pa.chunked_array([[1, 2], [3, 2]])).to_dict() == {2: 2}


# --- point 3: numbers stored as text or booleans ----------------------------------------------------


@pytest.mark.parametrize("on_invalid", ["raise", "skip"])
def test_numeric_columns_stored_as_text_or_booleans_are_refused(tmp_path, on_invalid):
    book = make_book(60, seed=2)
    text = book.assign(quantity=book["quantity"].astype(int).astype(str))  # "12", "-3": must not become numbers
    booleans = book.assign(quantity=book["quantity"] > 0)
    for bad, words in ((text, "column 'quantity' holds text"), (booleans, "column 'quantity' holds booleans")):
        with pytest.raises(BookError, match=f"book DataFrame of 60 rows: {words}"):
            gh.risk(bad, MARKET, on_invalid=on_invalid, **KW)
        with pytest.raises(BookError, match=f"book Arrow table of 60 rows: {words}"):
            gh.risk(pa.Table.from_pandas(bad, preserve_index=False), MARKET, on_invalid=on_invalid, **KW)
        path = tmp_path / "book.parquet"
        bad.to_parquet(path)
        with pytest.raises(BookError, match=f"book {path}: {words}"):
            gh.risk(path, MARKET, on_invalid=on_invalid, **KW)
        with pytest.raises(BookError, match=words):
            ResidentBook(bad, MARKET, backend="numpy", valuation_date=VALUATION, on_invalid=on_invalid)
    with pytest.raises(BookError, match="column 'strike' holds text.*column 'vol' holds booleans"):
        gh.risk(book.assign(strike=book["strike"].astype(str), vol=book["vol"] > 0.3), MARKET, on_invalid=on_invalid, **KW)
    # a CSV column pyarrow reads as booleans is refused too
    csv = tmp_path / "book.csv"
    book.assign(multiplier=np.where(np.arange(60) % 2, "true", "false")).to_csv(csv, index=False)
    with pytest.raises(BookError, match=f"book {csv}: column 'multiplier' holds booleans"):
        gh.risk(csv, MARKET, on_invalid=on_invalid, **KW)


def test_text_and_boolean_cells_are_invalid_rows_not_numbers():
    book = make_book(40, seed=4)
    for col in ("strike", "quantity", "multiplier", "vol", "expiry_years"):
        book[col] = book[col].astype(object)
    cells = {3: ("strike", "105"), 5: ("quantity", "10"), 8: ("quantity", False), 12: ("multiplier", "100"), 14: ("vol", True),
             21: ("expiry_years", "0.5")}  # fmt: skip
    for row, (col, value) in cells.items():
        book.loc[row, "expiry_years"] = 0.5 if col == "expiry_years" else book.loc[row, "expiry_years"]
        book.at[row, col] = value
    with pytest.raises(BookError, match=r"position_id P00005 \(row 5\): quantity = 10: quantity is text, not a number"):
        gh.risk(book, MARKET, chunk_rows=10, **KW)
    r = gh.risk(book, MARKET, chunk_rows=10, on_invalid="skip", **KW)
    got = {row: (c, reason) for row, c, reason in r.invalid[["row", "column", "reason"]].itertuples(index=False)}
    kind = lambda v: "text" if isinstance(v, str) else "a boolean"  # noqa: E731
    assert got == {row: (col, f"{col} is {kind(v)}, not a number") for row, (col, v) in cells.items()}
    assert len(r.positions) == 40 - len(cells)


def test_csv_number_literals_are_numbers_and_other_text_is_an_invalid_row(tmp_path):
    book = make_book(60, seed=4).dropna(subset=["expiry_years"]).drop(columns="expiry").reset_index(drop=True)
    book["strike"] = book["strike"].astype(object)
    book.loc[6, "strike"] = "abc"  # makes pyarrow read the column as text: the other cells are number literals
    path = tmp_path / "book.csv"
    book.to_csv(path, index=False)
    r = gh.risk(path, MARKET, on_invalid="skip", **KW)
    assert r.invalid[["row", "column", "reason"]].to_dict("records") == [
        {"row": 6, "column": "strike", "reason": "strike is missing or not a number"}
    ]
    ref = gh.risk(book.drop(index=6).astype({"strike": float}), MARKET, **KW)
    pd.testing.assert_frame_equal(r.by_underlying, ref.by_underlying, rtol=1e-12)


# --- point 5: resume verifies what it reuses --------------------------------------------------------


def test_a_truncated_partition_is_redone_and_the_outputs_equal_a_fresh_run(tmp_path):
    book = make_book(3000, seed=1)
    path = tmp_path / "book.parquet"
    book.to_parquet(path)
    kw = dict(KW, chunk_rows=400)
    first = gh.risk(path, MARKET, out=tmp_path / "run", **kw)
    assert first.summary["partitions"] == 8 and first.summary["partitions_redone"] == 0
    part = tmp_path / "run" / "parts" / "positions-000003.parquet"
    size = part.stat().st_size
    with open(part, "r+b") as f:  # truncated by hand (also positions.parquet/part-000003: a hard link)
        f.truncate(size // 2)
    flipped = tmp_path / "run" / "parts" / "invalid-000005.parquet"
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte changed, same size
    flipped.write_bytes(bytes(data))
    (tmp_path / "run" / "parts" / "sums-000006.npz").unlink()

    again = gh.risk(path, MARKET, out=tmp_path / "run", **kw)
    assert pq.read_table(tmp_path / "run" / "positions.parquet").num_rows == 3000  # readable, whole
    s = again.summary
    assert s["partitions_resumed"] == 5 and s["partitions_redone"] == 3, s
    assert s["redone"] == [
        "partition 3: checksum mismatch positions-000003.parquet",
        "partition 5: checksum mismatch invalid-000005.parquet",
        "partition 6: missing file sums-000006.npz",
    ]
    gh.risk(path, MARKET, out=tmp_path / "fresh", **kw)
    _same_outputs(tmp_path / "run", tmp_path / "fresh")
    # now everything verifies: all resumed, nothing redone
    third = gh.risk(path, MARKET, out=tmp_path / "run", **kw).summary
    assert third["partitions_resumed"] == 8 and third["partitions_redone"] == 0
    _same_outputs(tmp_path / "run", tmp_path / "fresh")


def _edit_in_place(path, offset_hint: int) -> None:
    """Change one digit of a quantity near ``offset_hint`` bytes into the CSV: same size; then put
    the old mtime back."""
    st = os.stat(path)
    data = path.read_bytes()
    start = data.index(b"\n", offset_hint) + 1
    end = data.index(b"\n", start)
    fields = data[start:end].split(b",")
    q = 6  # quantity's column in make_book's order
    digit = next(i for i, c in enumerate(fields[q]) if chr(c).isdigit())
    new = bytearray(fields[q])
    new[digit] = ord(str((int(chr(new[digit])) + 1) % 10))
    fields[q] = bytes(new)
    line = b",".join(fields)
    assert len(line) == end - start and line != data[start:end]
    with open(path, "r+b") as f:
        f.seek(start)
        f.write(line)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = os.stat(path)
    assert after.st_size == st.st_size and after.st_mtime_ns == st.st_mtime_ns


def test_an_input_edited_in_place_with_size_and_mtime_kept_resumes_nothing(tmp_path):
    book = make_book(60_000, seed=3)
    path = tmp_path / "book.csv"
    book.to_csv(path, index=False)
    assert path.stat().st_size > 3 << 20  # more than the first and last MiB the old fingerprint read
    kw = dict(valuation_date=VALUATION, backend="numpy", chunk_rows=15_000)
    gh.risk(path, MARKET, out=tmp_path / "run", **kw)
    before = fingerprint(path)
    _edit_in_place(path, path.stat().st_size // 2)

    again = gh.risk(path, MARKET, out=tmp_path / "run", **kw)
    gh.risk(path, MARKET, out=tmp_path / "fresh", **kw)
    _same_outputs(tmp_path / "run", tmp_path / "fresh")
    assert again.summary["partitions_resumed"] == 0 and again.summary["partitions"] == 4
    assert fingerprint(path) != before
    # the fingerprint is the content only: a touch or a copy still resumes
    os.utime(path)
    assert gh.risk(path, MARKET, out=tmp_path / "run", **kw).summary["partitions_resumed"] == 4
