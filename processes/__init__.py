"""Server processes PageForge starts on this machine and that outlive the command that started them."""

from processes.detached import DetachedProcess, ProcessSurvived, private_directory

__all__ = ["DetachedProcess", "ProcessSurvived", "private_directory"]
