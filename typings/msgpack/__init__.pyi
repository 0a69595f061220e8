# Type stubs for the part of msgpack workerhub uses (msgpack ships no hints and there is no stub package).
# Only for the type checker (mypy_path in pyproject.toml); keep it to what the code calls.
from collections.abc import Callable
from typing import Any

class UnpackException(Exception): ...

class Packer:
    def __init__(
        self,
        *,
        default: Callable[[Any], Any] | None = ...,
        use_single_float: bool = ...,
        autoreset: bool = ...,
        use_bin_type: bool = ...,
        strict_types: bool = ...,
        datetime: bool = ...,
        unicode_errors: str | None = ...,
    ) -> None: ...
    def pack(self, obj: Any) -> bytes: ...

def packb(o: Any, **kwargs: Any) -> bytes: ...
def unpackb(packed: bytes | bytearray | memoryview, **kwargs: Any) -> Any: ...
