"""The worker's path for one batch of ``flows`` events, as small steps with typed outputs.

In the order a flow goes through them (:mod:`.batch` is the orchestrator,
:meth:`.batch.BatchScorer.process`):

1. :func:`.validate.validate_events`: events -> :class:`.validate.ValidFlows` + dead letters
   (pure);
2. :func:`.features.model_inputs`: the good flows' model inputs (the saved transform);
3. :meth:`.host_state.HostState.histories` then :meth:`.score.ScoringPipeline.start`: windows
   and the model in the scoring thread -> :class:`.score.Running`;
4. :meth:`.score.ScoringPipeline.collect` -> :meth:`.publish.Publisher.verdicts`: one verdict
   per flow, alerts for the attacks (dead letters: :meth:`.publish.Publisher.dead_letters`);
5. :meth:`.host_state.HostState.write`: each host's new state, once per batch.

The model and the transform are seen through :mod:`.protocols`; what works around Faust lives
in :mod:`stream_ids.faust_fixes`.
"""
