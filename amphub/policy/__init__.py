"""Who may do what: the role matrix as data and the one function that reads it.

Pure functions over plain data, no I/O, so that the whole matrix can be tested as a table.
"""

from amphub.policy.matrix import Action, Actor, ModelTarget, SpaceTarget, allowed

__all__ = ["Action", "Actor", "ModelTarget", "SpaceTarget", "allowed"]
