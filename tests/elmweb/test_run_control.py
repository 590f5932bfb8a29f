"""Run control services: create (checked against the engine), start, pause, resume, stop, clone."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from elmweb.runs import services
from elmweb.runs.models import Run, RunEvent, Seed
from tests.elmweb.conftest import Queue, make_run

pytestmark = pytest.mark.django_db


def statuses(run: Run) -> list[str]:
    return [e.payload["status"] for e in RunEvent.objects.filter(run=run, kind="status")]


def test_a_new_run_copies_its_seed_and_records_a_created_event(user) -> None:
    run = make_run(user, name="first")

    assert run.status == Run.Status.CREATED
    assert run.seed_name == "square" and run.seed.name == "square"
    assert run.dims == [12, 12, 12]
    assert statuses(run) == ["created"]


@pytest.mark.parametrize(
    ("config", "field", "words"),
    [
        ({"seed": "nope"}, "seed", "does not exist; choose one of"),
        ({"terrain": "lava"}, "terrain", "unknown terrain 'lava'"),
        ({"mutation": "magic"}, "mutation", "unknown mutation 'magic'"),
        ({"model": "/models/x"}, "mutation", "only apply to --mutation diff or rewrite"),
        ({"dims": [12, 12]}, "dims", "one entry per descriptor dimension"),
        ({"ranges": [[0, 1], [5, 5], [0, 1]]}, "dims", "low < high"),
    ],
)
def test_a_run_with_a_bad_configuration_is_refused_with_a_message(user, config, field, words) -> None:
    with pytest.raises(ValidationError) as excinfo:
        make_run(user, **config)

    assert words in " ".join(excinfo.value.message_dict[field])
    assert not Run.objects.exists()


def test_a_disabled_seed_cannot_start_new_runs(user) -> None:
    Seed.objects.filter(name="square").update(enabled=False)

    with pytest.raises(ValidationError, match="is disabled"):
        make_run(user)


@pytest.mark.django_db(transaction=True)
def test_start_sets_running_and_queues_the_first_step_on_the_sim_queue(user, queue: Queue) -> None:
    run = services.run_start(run=make_run(user), user=user)

    assert run.status == Run.Status.RUNNING
    assert run.started_at is not None and run.heartbeat_at is not None
    assert queue.steps == [(run.pk, 0, "sim")]
    assert statuses(run) == ["created", "running"]


def test_only_the_owner_controls_a_run(user, other_user) -> None:
    run = make_run(user)

    for action in (services.run_start, services.run_pause, services.run_resume, services.run_stop):
        with pytest.raises(PermissionDenied, match="belongs to another user; clone it"):
            action(run=run, user=other_user)


def test_a_run_cannot_be_started_twice(user) -> None:
    run = services.run_start(run=make_run(user), user=user)

    with pytest.raises(services.Conflict, match="is running, so it cannot be started"):
        services.run_start(run=run, user=user)


def test_pausing_a_run_no_step_holds_pauses_it_at_once(user) -> None:
    run = services.run_start(run=make_run(user), user=user)

    assert services.run_pause(run=run, user=user).status == Run.Status.PAUSED


def test_pausing_a_run_with_a_batch_in_flight_waits_for_that_batch(user) -> None:
    run = services.run_start(run=make_run(user), user=user)
    Run.objects.filter(pk=run.pk).update(lease_token="a-step")

    assert services.run_pause(run=run, user=user).status == Run.Status.PAUSING


@pytest.mark.django_db(transaction=True)
def test_resume_sets_running_and_queues_the_next_step(user, queue: Queue) -> None:
    run = services.run_start(run=make_run(user), user=user)
    Run.objects.filter(pk=run.pk).update(batches=3)
    services.run_pause(run=run, user=user)

    run = services.run_resume(run=run, user=user)

    assert run.status == Run.Status.RUNNING
    assert queue.step_batches(run) == [0, 3]


@pytest.mark.django_db(transaction=True)
def test_resuming_a_pausing_run_cancels_the_pause_without_a_second_step(user, queue: Queue) -> None:
    run = services.run_start(run=make_run(user), user=user)
    Run.objects.filter(pk=run.pk).update(lease_token="a-step")
    services.run_pause(run=run, user=user)

    assert services.run_resume(run=run, user=user).status == Run.Status.RUNNING
    assert queue.step_batches(run) == [0]


def test_a_created_run_cannot_be_paused_or_resumed(user) -> None:
    run = make_run(user)

    with pytest.raises(services.Conflict, match="only a running run pauses"):
        services.run_pause(run=run, user=user)
    with pytest.raises(services.Conflict, match="only a paused run resumes"):
        services.run_resume(run=run, user=user)


def test_stop_finishes_a_run_for_good(user) -> None:
    run = services.run_start(run=make_run(user), user=user)

    run = services.run_stop(run=run, user=user)

    assert run.status == Run.Status.FINISHED and run.finished_at is not None
    assert RunEvent.objects.filter(run=run).last().payload == {"status": "finished", "stopped": True}
    with pytest.raises(services.Conflict, match="already ended"):
        services.run_stop(run=run, user=user)


def test_anyone_logged_in_can_clone_a_run_into_a_new_run_of_their_own(user, other_user) -> None:
    run = make_run(user, name="mine", terrain="bumpy", rng_seed=7)

    clone = services.run_clone(run=run, owner=other_user)

    assert clone.owner == other_user and clone.cloned_from == run
    assert clone.status == Run.Status.CREATED and clone.name == "mine (clone)"
    assert (clone.terrain, clone.rng_seed, clone.seed_text) == ("bumpy", 7, run.seed_text)


def test_the_clone_of_a_run_with_the_longest_name_gets_a_name_that_fits(user, other_user) -> None:
    run = make_run(user, name="x" * Run._meta.get_field("name").max_length)

    clone = services.run_clone(run=run, owner=other_user)

    assert len(clone.name) == Run._meta.get_field("name").max_length and clone.name.endswith(" (clone)")


def test_a_superuser_may_control_any_run(user, django_user_model) -> None:
    root = django_user_model.objects.create_superuser(username="root", password="pw-root-123")

    assert services.run_start(run=make_run(user), user=root).status == Run.Status.RUNNING
