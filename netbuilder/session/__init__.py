"""The run session, apart from its views (no Qt anywhere in this package).

- ``state``: ``RunState`` and the ``StateMachine`` that checks every change.
- ``events``: ``Event``, the plain callbacks views subscribe with.
- ``session``: ``RunSession``, one run at a time, its record and its events.
- ``loop``: ``RunLoop``, the training loop run on the training thread.
- ``messages``: what the loop sends (RunInfo, Snapshot, EpochReport, RunOutcome).
- ``runner``: ``ThreadRunner``, the Qt-free way to run a loop on a thread.
- ``runs``: ``RunRecord`` and ``RunsStore``, the session's runs and their files.
- ``probes``: what the monitor measures, through the engine's network hooks.
- ``kernel_service``: compiling the kernels a model needs before its first batch.

The GUI's adapters (``netbuilder.training``) and presenter (``netbuilder.monitor.presenter``)
sit on top; nothing here imports them.
"""

from .events import Event
from .runs import RunRecord, RunsStore
from .session import RunSession
from .state import RunState, StateMachine, TransitionError

__all__ = ["Event", "RunRecord", "RunSession", "RunState", "RunsStore", "StateMachine",
           "TransitionError"]
