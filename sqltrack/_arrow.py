"""Record batches in the exact shape each side wants: relaxed nested nullability for
Parquet staging (:func:`relax`), and exactly Spark's Arrow schema for the batches a
reader yields (:func:`conform`), whichever engine they were read from."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["conform", "conform_array", "relax", "relaxed"]


def relaxed(t: pa.DataType) -> pa.DataType:
    """``t`` with every nested field nullable. Spark marks a struct's child NOT NULL
    even where the struct itself is null (the child slot then holds a null), which
    Parquet writers refuse; the exact nullability comes back from ``spark_schema``."""
    import pyarrow as pa

    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, relaxed(f.type)) for f in t])
    if pa.types.is_map(t):
        return pa.map_(relaxed(t.key_type), relaxed(t.item_type))
    if pa.types.is_list(t):
        return pa.list_(relaxed(t.value_type))
    if pa.types.is_large_list(t):
        return pa.large_list(relaxed(t.value_type))
    return t


def relax(batch: pa.RecordBatch) -> pa.RecordBatch:
    import pyarrow as pa

    schema = pa.schema(
        [pa.field(f.name, relaxed(f.type), f.nullable, f.metadata) for f in batch.schema]
    )
    if schema.equals(batch.schema):
        return batch
    return batch.cast(schema)


def conform(batch: pa.RecordBatch, target: pa.Schema) -> pa.RecordBatch:
    """Rename columns by position and cast each to ``target``'s exact type."""
    import pyarrow as pa

    arrays = []
    for i, field in enumerate(target):
        col = batch.column(i)
        if col.type != field.type:
            col = conform_array(col, field.type)
        arrays.append(col)
    return pa.RecordBatch.from_arrays(arrays, schema=target)


def conform_array(col: pa.Array, to: pa.DataType) -> pa.Array:
    import pyarrow as pa

    t = col.type
    if isinstance(t, pa.ExtensionType):
        col = col.storage
        t = col.type
    if pa.types.is_timestamp(to) and pa.types.is_timestamp(t) and t.tz and to.tz:
        col = col.cast(pa.timestamp(t.unit, "UTC")).cast(to)
        return col
    if pa.types.is_struct(to) and pa.types.is_struct(t):
        flat = col.flatten()  # children with the parent's offset applied
        children = [conform_array(flat[i], to.field(i).type) for i in range(to.num_fields)]
        return pa.StructArray.from_arrays(
            children, fields=list(to), mask=col.is_null() if col.null_count else None
        )
    if pa.types.is_map(to) and pa.types.is_map(t):
        keys = conform_array(col.keys, to.key_type)
        items = conform_array(col.items, to.item_type)
        return pa.MapArray.from_arrays(
            col.offsets, keys, items, type=to, mask=col.is_null() if col.null_count else None
        )
    if (pa.types.is_list(to) or pa.types.is_large_list(to)) and (
        pa.types.is_list(t) or pa.types.is_large_list(t)
    ):
        values = conform_array(col.values, to.value_type)
        cls = pa.ListArray if pa.types.is_list(to) else pa.LargeListArray
        return cls.from_arrays(
            col.offsets.cast(pa.int32() if pa.types.is_list(to) else pa.int64()),
            values,
            type=to,
            mask=col.is_null() if col.null_count else None,
        )
    return col.cast(to)
