from .stream import Column, Contract, FileRejected, PassStats, RowStream, check_value, read_header

__all__ = ["Column", "Contract", "FileRejected", "PassStats", "RowStream", "check_value", "read_header"]
