"""minnet.testing.assert_gradients: the gradient check as a test assertion, run inside pytest."""
import doctest
import inspect

import numpy as np
import pytest

import minnet
import minnet.testing
from minnet import course as l_layer
from minnet.testing import GradientCheckFailed, assert_gradients

from . import course

X, Y, PARAMETERS = course.gradient_check_n_test_case()


def course_cost(parameters):
    return course.forward_propagation_n(X, Y, parameters)[0]


def course_grads(fixed):
    return lambda p: course.backward_propagation_n(X, Y, course.forward_propagation_n(X, Y, p)[1], fixed=fixed)


# J + 1e9: its rounding swamps every difference at every step, so no check can resolve the gradient
W = {"w": np.array([0.5, -1.2, 2.0])}


def huge_cost(p):
    return 1e9 + float(np.sum(np.sin(p["w"])))


def huge_grads(p):
    return {"dw": np.cos(p["w"])}


def test_a_correct_backprop_passes_and_returns_the_report():
    report = assert_gradients(course_cost, course_grads(fixed=True), PARAMETERS)
    assert isinstance(report, minnet.GradCheckReport) and report.verdict == "correct"


def test_the_course_pair_and_check_gradients_options_are_taken_as_they_are():
    fixed = lambda X, Y, cache: course.backward_propagation_n(X, Y, cache, fixed=True)
    report = minnet.testing.assert_gradients(forward=course.forward_propagation_n, backward=fixed, X=X, Y=Y,
                                             parameters=PARAMETERS, epsilon=1e-6, sample=3, seed=1)
    assert report.verdict == "correct" and report.epsilon == 1e-6
    assert [block.n_checked for block in report.blocks.values()] == [min(3, p.size) for p in PARAMETERS.values()]


def test_the_course_l_layer_network_passes():
    Xc, Yc = l_layer.cat_like_data([12, 5, 3, 1], 16)
    cost_fn, grads_fn = l_layer.functions(Xc, Yc)
    assert assert_gradients(cost_fn, grads_fn, l_layer.initialize_parameters_deep([12, 5, 3, 1])).verdict == "correct"


def test_a_planted_bug_fails_with_the_report_naming_the_blocks():
    with pytest.raises(AssertionError) as failed:
        assert_gradients(course_cost, course_grads(fixed=False), PARAMETERS)
    report = failed.value.report
    assert isinstance(failed.value, GradientCheckFailed) and report.verdict == "bug"
    message = str(failed.value)
    assert message == str(report)  # the report's text, whole
    assert report.worst_block in message
    for name in ("W2", "b1"):  # the course's two planted bugs, each block's verdict in the table
        assert report.blocks[name].verdict == "bug"
        assert any(line.split()[:1] == [name] and "bug" in line.split() for line in message.splitlines()), name


def test_a_bug_in_one_block_names_that_block():
    def grads(p):
        g = course_grads(fixed=True)(p)
        return dict(g, dW3=g["dW3"] * 1.5)
    with pytest.raises(AssertionError, match="W3") as failed:
        assert_gradients(course_cost, grads, PARAMETERS)
    assert failed.value.report.worst_block == "W3"


def test_fail_fast_stops_at_the_first_bug_and_still_fails():
    with pytest.raises(AssertionError) as failed:
        assert_gradients(course_cost, course_grads(fixed=False), PARAMETERS, fail_fast=True)
    assert failed.value.report.stopped["block"] == "b1"


def test_inconclusive_fails_by_default_and_says_how_to_accept_it():
    with pytest.raises(AssertionError) as failed:
        assert_gradients(huge_cost, huge_grads, W)
    report = failed.value.report
    assert report.verdict == "inconclusive"
    message = str(failed.value)
    assert message.startswith(str(report)) and "inconclusive='pass'" in message
    with pytest.raises(AssertionError):
        assert_gradients(huge_cost, huge_grads, W, inconclusive="fail")


def test_inconclusive_passes_when_asked_and_returns_the_report():
    report = assert_gradients(huge_cost, huge_grads, W, inconclusive="pass")
    assert report.verdict == "inconclusive"


def test_a_bug_fails_even_when_inconclusive_passes():
    wrong = lambda p: {"dw": -np.cos(p["w"])}  # far enough wrong for the referee's larger steps to see
    with pytest.raises(AssertionError, match="BUG"):
        assert_gradients(huge_cost, wrong, W, inconclusive="pass")


@pytest.mark.parametrize("value, error", [("warn", ValueError), ("Pass", ValueError), ("", ValueError),
                                          (True, TypeError), (None, TypeError)])
def test_a_bad_inconclusive_is_refused_before_any_check(value, error):
    calls = []

    def cost(p):
        calls.append(1)
        return course_cost(p)
    with pytest.raises(error, match="inconclusive must be .*'fail', 'pass'"):
        assert_gradients(cost, course_grads(fixed=True), PARAMETERS, inconclusive=value)
    assert not calls


@pytest.mark.parametrize("options, error, match", [
    ({"epsilon": -1.0}, ValueError, "epsilon"),
    ({"mode": "sideways"}, ValueError, "mode"),
    ({"sample": 0}, ValueError, "sample"),
    ({"fail_fast": True, "sample": 2}, ValueError, "fail_fast"),
    ({"n_jobs": 0}, ValueError, "n_jobs"),
])
def test_bad_check_options_are_refused_as_check_gradients_refuses_them(options, error, match):
    with pytest.raises(error, match=match) as ours:
        assert_gradients(course_cost, course_grads(fixed=True), PARAMETERS, **options)
    with pytest.raises(error) as theirs:
        minnet.check_gradients(course_cost, course_grads(fixed=True), PARAMETERS, **options)
    assert str(ours.value) == str(theirs.value)


def test_missing_functions_and_unknown_arguments_are_errors_not_failures():
    with pytest.raises((TypeError, ValueError)) as ours:
        assert_gradients(course_cost, parameters=PARAMETERS)
    assert not isinstance(ours.value, AssertionError)
    with pytest.raises(TypeError, match="epsilonn"):
        assert_gradients(course_cost, course_grads(fixed=True), PARAMETERS, epsilonn=1e-6)
    with pytest.raises(TypeError, match="_entries"):  # check_gradients's private arguments are not passed on
        assert_gradients(course_cost, course_grads(fixed=True), PARAMETERS, _entries=np.arange(3))
    with pytest.raises(TypeError):  # options are keyword-only, as check_gradients's are
        assert_gradients(course_cost, course_grads(fixed=True), PARAMETERS, 1e-6)


def test_the_signature_is_check_gradients_public_one_plus_inconclusive():
    ours = inspect.signature(assert_gradients).parameters
    theirs = {name: p for name, p in inspect.signature(minnet.check_gradients).parameters.items()
              if not name.startswith("_")}
    assert list(ours) == list(theirs) + ["inconclusive"]
    assert all(ours[name].default == p.default and ours[name].kind == p.kind for name, p in theirs.items())
    assert ours["inconclusive"].default == "fail"


def test_the_docstrings_examples_run():
    found = doctest.testmod(minnet.testing, optionflags=doctest.ELLIPSIS)
    assert found.attempted >= 4 and found.failed == 0


def test_the_module_s_pytest_example_runs_and_its_test_passes():
    example = minnet.testing.__doc__.split("::\n\n", 1)[1].split("\n\n\n", 1)[0]
    example = "\n".join(line[4:] for line in example.split("\nA wrong backprop")[0].splitlines())
    namespace = {}
    exec(compile(example, "minnet.testing example", "exec"), namespace)
    namespace["test_my_backprop"]()


def test_the_failure_survives_pickling():
    import pickle
    with pytest.raises(GradientCheckFailed) as failed:
        assert_gradients(course_cost, course_grads(fixed=False), PARAMETERS)
    again = pickle.loads(pickle.dumps(failed.value))
    assert isinstance(again, AssertionError) and str(again) == str(failed.value)
