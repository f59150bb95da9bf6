"""Transfers between the task volume and storage, chosen by URL scheme."""

from tesk.filer.base import Transfer, TransferError, TransientTransferError
from tesk.filer.filer import Filer
from tesk.filer.router import check_url, storage_locations
from tesk.filer.stage import run_stage, stage_result

__all__ = [
    "Filer",
    "Transfer",
    "TransferError",
    "TransientTransferError",
    "check_url",
    "run_stage",
    "stage_result",
    "storage_locations",
]
