"""Server processes PageForge starts on this machine and that outlive the command that started them."""

from processes.detached import DetachedProcess, ProcessSurvived, exclusive_lock, private_directory

__all__ = ["DetachedProcess", "ProcessSurvived", "exclusive_lock", "private_directory"]
