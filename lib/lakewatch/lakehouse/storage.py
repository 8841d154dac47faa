"""Files in the lakehouse (model packages, reports) through Hadoop's file system: local and s3a alike."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def _fs_path(spark: "SparkSession", path: str):
    jvm = spark.sparkContext._jvm
    p = jvm.org.apache.hadoop.fs.Path(path)
    return p.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), p


def write_bytes(spark: "SparkSession", path: str, data: bytes) -> None:
    fs, p = _fs_path(spark, path)
    fs.setWriteChecksum(False)  # no .crc side files next to packages and reports
    out = fs.create(p, True)
    try:
        out.write(bytearray(data))
    finally:
        out.close()


def read_bytes(spark: "SparkSession", path: str) -> bytes:
    fs, p = _fs_path(spark, path)
    if not fs.exists(p):
        raise FileNotFoundError(f"no file at {path}")
    stream = fs.open(p)
    try:
        return bytes(spark.sparkContext._jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
    finally:
        stream.close()


def exists(spark: "SparkSession", path: str) -> bool:
    fs, p = _fs_path(spark, path)
    return bool(fs.exists(p))
