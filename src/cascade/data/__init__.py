"""Data records (the contract in docs/records.md) and their readers and writers. Torch-free."""

from cascade.data.hub import is_hub_id, load_dataset_source
from cascade.data.io import (
    append_jsonl,
    atomic_open,
    count_rows,
    iter_records,
    iter_rows,
    read_records,
    write_jsonl,
    write_parquet,
)
from cascade.data.records import (
    RECORD_KINDS,
    Message,
    Prediction,
    PreferencePair,
    PromptRecord,
    RecordKind,
    SFTConversation,
    ToolCall,
    record_messages,
    record_model,
)

__all__ = [
    "RECORD_KINDS",
    "Message",
    "Prediction",
    "PreferencePair",
    "PromptRecord",
    "RecordKind",
    "SFTConversation",
    "ToolCall",
    "append_jsonl",
    "atomic_open",
    "count_rows",
    "is_hub_id",
    "iter_records",
    "iter_rows",
    "load_dataset_source",
    "read_records",
    "record_messages",
    "record_model",
    "write_jsonl",
    "write_parquet",
]
