"""Text tasks: SST-2 and generic CSV through datasets, bad CSVs, and the bucketed pipeline."""

import contextlib

import numpy as np
import pytest
import torch

from transferbench.adapters import ADAPTERS
from transferbench.errors import DataError, WeightsError
from transferbench.tasks import TASKS, load_task
from transferbench.tasks.base import Split
from transferbench.tasks.text import TextPipeline
from transferbench.testing import tiny_bert


def _csv(path, header, rows):
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")


def test_sst2_fixture_loads_with_validation_as_test(sst2_like):
    data = load_task(TASKS.get("sst2"), str(sst2_like))
    assert (len(data.train), len(data.test)) == (4000, 872)
    assert data.class_names == ["negative", "positive"]
    assert np.bincount(data.test.labels).tolist() == [428, 444]
    assert data.test_split == "validation"
    assert any("validation split is reported" in n for n in data.notes)


def test_csv_maps_string_labels_and_records_the_mapping(tmp_path):
    _csv(tmp_path / "train.csv", "review,stars", ['"great, really",good', "awful,bad", "fine,meh", "superb,good"])
    _csv(tmp_path / "test.csv", "review,stars", ["lovely,good", "dreadful,bad"])
    data = load_task(TASKS.get("csv"), str(tmp_path), text_column="review", label_column="stars")
    assert data.class_names == ["bad", "good", "meh"]
    assert data.train.labels.tolist() == [1, 0, 2, 1]
    assert data.train.inputs[0] == "great, really"


def test_empty_text_rows_are_counted_not_silently_dropped(tmp_path):
    _csv(tmp_path / "train.csv", "text,label", ["good film,1", '"",0', "bad film,0", '"   ",1'])
    _csv(tmp_path / "test.csv", "text,label", ["ok,1"])
    data = load_task(TASKS.get("csv"), str(tmp_path))
    assert len(data.train) == 2
    assert any("dropped 2 rows with empty text" in n for n in data.notes)


@pytest.mark.parametrize(
    ("train_rows", "test_rows", "kwargs", "message"),
    [
        (["a,1"], ["b,1"], {"text_column": "sentence"}, r"no column 'sentence'; columns present: text, label"),
        (["a,1", "b,2"], ["c,3"], {}, r"labels '3' never occur in .*train.csv"),
        (["a,1", "b,"], ["c,1"], {}, r"train.csv row 3: empty 'label'"),
        (['"",1'], ["c,1"], {}, r"no rows with text in column 'text'"),
    ],
)
def test_bad_csvs_name_file_and_field(tmp_path, train_rows, test_rows, kwargs, message):
    _csv(tmp_path / "train.csv", "text,label", train_rows)
    _csv(tmp_path / "test.csv", "text,label", test_rows)
    with pytest.raises(DataError, match=message):
        load_task(TASKS.get("csv"), str(tmp_path), **kwargs)


def test_non_utf8_file_names_the_line(tmp_path):
    (tmp_path / "train.csv").write_bytes("text,label\nfine,1\ncaf\xe9,0\n".encode("latin-1"))
    _csv(tmp_path / "test.csv", "text,label", ["ok,1"])
    with pytest.raises(DataError, match=r"train.csv:3: not UTF-8 text \(byte \d+\)"):
        load_task(TASKS.get("csv"), str(tmp_path))


def test_fixed_class_labels_are_ids_or_those_names(tmp_path):
    _csv(tmp_path / "train.csv", "sentence,label", ["good,positive", "bad,0", "fine,1"])
    _csv(tmp_path / "validation.csv", "sentence,label", ["ok,negative"])
    data = load_task(TASKS.get("sst2"), str(tmp_path))
    assert data.train.labels.tolist() == [1, 0, 1] and data.test.labels.tolist() == [0]
    _csv(tmp_path / "train.csv", "sentence,label", ["good,pos", "bad,negative"])
    with pytest.raises(DataError, match=r"label 'pos' .* is not one of 0, 1 or negative, positive"):
        load_task(TASKS.get("sst2"), str(tmp_path))


def test_pipeline_pads_per_batch_buckets_by_length_and_keeps_order(tmp_path):
    model = ADAPTERS.get("minilm-l6").create(num_classes=2, pretrained=True, **tiny_bert(tmp_path))
    texts = ["good " * n for n in (1, 9, 2, 8, 3, 7, 4, 6)]
    pipe = TextPipeline(Split(texts, np.arange(8) % 2), model, device=torch.device("cpu"))
    eval_batches = list(pipe.batches(4, shuffle=False))
    widths = [b["input_ids"].shape[1] for b in eval_batches]
    assert widths == [6, 11]  # sorted by length: [CLS] + 1..4 words + [SEP], then 6..9 words
    for b in eval_batches:
        assert (b["attention_mask"].sum(1) == torch.tensor([pipe.lengths[i] for i in b["index"]])).all()
        assert (b["input_ids"][b["attention_mask"] == 0] == model.pad_id).all()
    seen = torch.cat([b["index"] for b in pipe.batches(4, shuffle=True, gen=torch.Generator().manual_seed(0))])
    assert sorted(seen.tolist()) == list(range(8))


def test_truncation_to_max_length(tmp_path):
    model = ADAPTERS.get("bert-base-uncased").create(
        num_classes=2, pretrained=True, max_length=5, **tiny_bert(tmp_path)
    )
    assert max(len(ids) for ids in model.encode(["good " * 20, "bad"])) == 5


def test_remote_code_is_not_run_unless_asked(tmp_path):
    tiny = tiny_bert(tmp_path)["model_path"]
    import json
    from pathlib import Path

    config = json.loads((Path(tiny) / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}
    (Path(tiny) / "config.json").write_text(json.dumps(config))
    marker = tmp_path / "ran"
    (Path(tiny) / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    with contextlib.suppress(WeightsError):  # refusing is fine; running the code is not
        ADAPTERS.get("hf-encoder").create(num_classes=2, pretrained=True, model_path=tiny)
    assert not marker.exists()
