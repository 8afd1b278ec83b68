"""Move data: `s3://` (an S3 endpoint, or the embedded bucket store), `file://`, `https://`; model archives.

    store_for(uri, settings) -> ObjectStore       the backend that holds a URI
    bucket_store(settings)   -> BucketStore       where s3:// lives (S3 endpoint or $FORKLIFT_HOME/buckets)
    copy_object / copy_tree                       between any two URIs
    stage_channel(data_source, dest_dir, ...)     a SageMaker training channel into a host directory
    check_file_uri(uri, settings, field)          file:// only below `file_roots` (config.toml), no symlinks
    pack_tar_gz / extract_tar_gz                  model.tar.gz
    fetch_source_dir(uri, dest_dir, settings)     a script-mode sourcedir.tar.gz unpacked, within bounds
    download_stoppable(store, uri, dest, cancel)  one object, stopping at the next chunk on a stop
"""

from forklift.storage.archive import ArchiveBounds, extract_tar_gz, pack_tar_gz
from forklift.storage.base import BucketInfo, BucketStore, ObjectInfo, ObjectStore, download_stoppable
from forklift.storage.channels import ChannelSource, read_manifest, stage_channel
from forklift.storage.embedded import EmbeddedBuckets
from forklift.storage.errors import (
    BucketAlreadyExists,
    ChannelError,
    InvalidBucketName,
    InvalidURI,
    NoSuchBucket,
    NoSuchKey,
    ReadOnlyStore,
    StorageError,
    UnsafeArchive,
    UnsafeKey,
)
from forklift.storage.fileroots import OutsideFileRoots, file_roots
from forklift.storage.hostpaths import HostFiles, check_file_uri
from forklift.storage.https import HttpsObjects
from forklift.storage.local import LocalFiles
from forklift.storage.resolve import bucket_store, store_for
from forklift.storage.s3 import S3Backend
from forklift.storage.settings import s3_endpoint
from forklift.storage.sourcedir import SOURCE_BOUNDS, fetch_source_dir
from forklift.storage.transfer import copy_object, copy_tree
from forklift.storage.uri import Location, parse_uri, validate_bucket_name

__all__ = [
    "SOURCE_BOUNDS", "ArchiveBounds",
    "BucketAlreadyExists", "BucketInfo", "BucketStore", "ChannelError", "ChannelSource", "EmbeddedBuckets",
    "HostFiles", "HttpsObjects", "InvalidBucketName", "InvalidURI", "LocalFiles", "Location", "NoSuchBucket",
    "NoSuchKey", "ObjectInfo", "ObjectStore", "OutsideFileRoots", "ReadOnlyStore", "S3Backend", "StorageError",
    "UnsafeArchive", "UnsafeKey", "bucket_store", "check_file_uri", "copy_object", "copy_tree", "download_stoppable",
    "extract_tar_gz", "fetch_source_dir",
    "file_roots", "pack_tar_gz", "parse_uri", "read_manifest", "s3_endpoint", "stage_channel", "store_for",
    "validate_bucket_name",
]
