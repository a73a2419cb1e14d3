import numpy as np
import pandas as pd
import pytest

from scale_transfer.data import DataError, read_tidy, validate


def frame(n=6, tasks=("a", "b")):
    rows = []
    for t in tasks:
        for i in range(n):
            rows.append(
                {"model": f"m{i}", "task": t, "us_acc": 0.1 + 0.05 * i, "ds_acc": 0.5 + 0.04 * i}
            )
    return pd.DataFrame(rows)


def write(tmp_path, df, name="d.csv"):
    p = tmp_path / name
    df.to_csv(p, index=False)
    return p


def test_good_csv_and_parquet(tmp_path):
    df = frame()
    out = read_tidy(write(tmp_path, df))
    assert list(out.columns[:5]) == ["model", "task", "us_acc", "ds_acc", "setting"]
    assert (out.setting == "default").all()
    pq = tmp_path / "d.parquet"
    df.to_parquet(pq)
    assert len(read_tidy(pq)) == len(df)
    assert len(read_tidy(df)) == len(df)


def test_setting_from_upstream_and_shots():
    df = frame()
    df["upstream"] = "jft"
    df["shots"] = 25
    assert set(read_tidy(df).setting) == {"jft-25shot"}


def test_missing_column(tmp_path):
    p = write(tmp_path, frame().drop(columns="ds_acc"))
    with pytest.raises(DataError, match=r"d\.csv.*missing column\(s\) ds_acc"):
        read_tidy(p)


def test_non_numeric_names_column_and_row(tmp_path):
    df = frame().astype({"us_acc": object})
    df.loc[3, "us_acc"] = "high"
    with pytest.raises(
        DataError, match=r"d\.csv: column 'us_acc' has non-numeric values at line 5 .*'high'"
    ):
        read_tidy(write(tmp_path, df))


def test_nan(tmp_path):
    df = frame()
    df.loc[[2, 5], "ds_acc"] = np.nan
    with pytest.raises(DataError, match=r"column 'ds_acc' is missing \(NaN\) at lines 4, 7"):
        read_tidy(write(tmp_path, df))


def test_out_of_range(tmp_path):
    df = frame()
    df.loc[0, "ds_acc"] = 1.2
    with pytest.raises(DataError, match=r"column 'ds_acc' is outside \[0, 1\] at line 2"):
        read_tidy(write(tmp_path, df))


def test_percent_hint_and_flag(tmp_path):
    df = frame()
    df[["us_acc", "ds_acc"]] *= 100
    p = write(tmp_path, df)
    with pytest.raises(DataError, match="look like percent: pass --percent"):
        read_tidy(p)
    out = read_tidy(p, percent=True)
    assert out.us_acc.max() <= 1


def test_duplicates(tmp_path):
    df = pd.concat([frame(), frame().iloc[[0]]], ignore_index=True)
    with pytest.raises(DataError, match=r"duplicate \(model, task, setting\) at lines 2, 14"):
        read_tidy(write(tmp_path, df))


def test_too_few_points(tmp_path):
    df = pd.concat([frame(), frame(n=2, tasks=("c",))], ignore_index=True)
    with pytest.raises(DataError, match=r"too few points.*c \(default\): 2"):
        read_tidy(write(tmp_path, df))


def test_empty_file(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text("")
    with pytest.raises(DataError, match=r"e\.csv: the file is empty"):
        read_tidy(p)
    p.write_text("model,task,us_acc,ds_acc\n")
    with pytest.raises(DataError, match="no data rows"):
        read_tidy(p)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_tidy(tmp_path / "nope.csv")


def test_validate_report(tmp_path):
    r = validate(write(tmp_path, frame()))
    assert r.n_rows == 12 and r.tasks == {"a": 6, "b": 6}
    assert "2 tasks" in str(r)


def test_empty_setting_cells_are_named(tmp_path):
    df = frame()
    df["upstream"] = "jft"
    df.loc[4, "upstream"] = np.nan  # a blank cell in the CSV
    with pytest.raises(DataError, match=r"d\.csv: column 'upstream' is empty at line 6"):
        read_tidy(write(tmp_path, df))
    df = frame()
    df["setting"] = "s"
    df.loc[0, "setting"] = " "
    with pytest.raises(DataError, match=r"column 'setting' is empty at row with index 0"):
        read_tidy(df)


def test_params_and_shots_must_be_numbers(tmp_path):
    df = frame()
    df["params"] = ["1,000,000", "", "5e6", "big", "2", "3"] * 2
    with pytest.raises(DataError, match=r"column 'params' is not a number at lines 5, 11 .*'big'"):
        read_tidy(write(tmp_path, df))
    df["params"] = ["1,000,000", "", "5e6", "7", "2", "3"] * 2  # thousands commas, blanks: fine
    got = read_tidy(write(tmp_path, df))["params"]
    assert got.iloc[0] == 1e6 and np.isnan(got.iloc[1])
    df = frame()
    df["shots"] = 25.0
    df.loc[2, "shots"] = 2.5
    with pytest.raises(DataError, match=r"'shots' is not a whole number .* row with index 2"):
        read_tidy(df)


def test_percent_hint_only_when_the_data_look_like_percent(tmp_path):
    df = frame()
    df.loc[3, "ds_acc"] = 1.2  # one typo among fractions: --percent would break the rest
    with pytest.raises(DataError, match=r"outside \[0, 1\] at row with index 3") as e:
        read_tidy(df)
    assert "--percent" not in str(e.value)
    pct = frame()
    pct[["us_acc", "ds_acc"]] *= 100
    with pytest.raises(DataError, match="look like percent"):
        read_tidy(pct)
    assert read_tidy(pct, percent=True)["ds_acc"].max() <= 1
    with pytest.raises(DataError, match="look like fractions already"):
        read_tidy(frame(), percent=True)


def test_rows_are_named_as_the_user_sees_them(tmp_path):
    # a CSV: the file's line, blank lines and a cell spanning two lines counted
    p = tmp_path / "d.csv"
    p.write_text(
        "model,task,us_acc,ds_acc\n\nm0,a,0.1,0.5\n   \n"
        '"m\n1",a,0.2,0.6\nm2,a,0.3,0.7\nm3,a,0.4,7\n'
    )
    with pytest.raises(DataError, match=r"d\.csv: column 'ds_acc' is outside \[0, 1\] at line 8 "):
        read_tidy(p)
    # a frame: its index labels, as df.loc takes them (here after a filter)
    df = frame(n=8)
    df = df[df.us_acc > 0.15]
    df.loc[df.index[-1], "us_acc"] = 1.5
    with pytest.raises(DataError, match=r"outside \[0, 1\] at row with index 15 "):
        read_tidy(df)
    # parquet has no lines: 1-based data rows
    df = frame()
    df.loc[2, "ds_acc"] = 1.5
    df.to_parquet(tmp_path / "d.parquet")
    with pytest.raises(DataError, match=r"d\.parquet: .* at row 3 "):
        read_tidy(tmp_path / "d.parquet")
