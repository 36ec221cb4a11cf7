"""Option text parsed into values (suite.values), and the value checks every config runs."""

from __future__ import annotations

import math

import pytest

from suite.errors import SuiteError
from suite.values import (check_choice, check_file_name, check_real, check_whole, parse_fraction, parse_fractions,
                          parse_ints, parse_list)


@pytest.mark.parametrize("text, value", [("8/255", 8 / 255), (" 2 / 255 ", 2 / 255), ("0.03", 0.03), ("0", 0.0),
                                         ("1e-2", 0.01), ("-1", -1.0)])
def test_fractions_and_decimals_parse_to_their_value(text, value):
    assert parse_fraction(text, "--eps") == value  # the range is the config's to check, not the parser's


@pytest.mark.parametrize("text, needle", [("8/0", "--eps '8/0' divides by zero"),
                                          ("eight", "--eps 'eight' is not a number or a fraction like 8/255"),
                                          ("8/2.5", "--eps '8/2.5' is not a number"), ("", "--eps '' is not a number")])
def test_bad_fraction_text_names_the_option_and_the_text(text, needle):
    with pytest.raises(SuiteError, match=f"^{needle}"):
        parse_fraction(text, "--eps")


def test_lists_keep_their_order_and_refuse_empty_items():
    assert parse_list(" fgsm, pgd ,square", "--method") == ["fgsm", "pgd", "square"]
    assert parse_fractions("0,2/255", "--eps") == [0.0, 2 / 255]
    assert parse_ints("2,4,8", "--timesteps") == [2, 4, 8]
    for text in ("a,,b", "a,", ",a", " , "):
        with pytest.raises(SuiteError, match=rf"^--method '{text}' has an empty item$"):
            parse_list(text, "--method")
    with pytest.raises(SuiteError, match="^--method is empty$"):
        parse_list("  ", "--method")


@pytest.mark.parametrize("text", ["2.5", "2e1", "x", "4,two"])
def test_whole_number_lists_refuse_anything_else(text):
    with pytest.raises(SuiteError, match=rf"^--timesteps '{text}' is not a whole number or a list like 2,4,8$"):
        parse_ints(text, "--timesteps")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1.5, -0.1])
def test_reals_refuse_nan_inf_and_values_outside_the_domain(value):
    with pytest.raises(SuiteError, match=r"^--lr must be a finite number in \(0, 1\], got "):
        check_real(value, "--lr", 0.0, 1.0, lo_open=True)


def test_reals_take_the_ends_of_a_closed_domain_and_not_of_an_open_one():
    check_real(0.0, "eps", 0.0, 1.0)
    check_real(1, "eps", 0.0, 1.0)  # an int is a number too
    with pytest.raises(SuiteError):
        check_real(0.0, "--lr", 0.0, 1.0, lo_open=True)
    with pytest.raises(SuiteError, match="^eps must be a number, got True$"):
        check_real(True, "eps", 0.0, 1.0)  # a bool is not


@pytest.mark.parametrize("value, needle", [(0, "a whole number from 1 to 10, got 0"), (11, "a whole number from 1 to 10, got 11"),
                                           (2.0, "a whole number, got 2.0"), (True, "a whole number, got True"),
                                           ("3", "a whole number, got '3'")])
def test_whole_numbers_refuse_other_types_and_values(value, needle):
    with pytest.raises(SuiteError, match=f"^--steps must be {needle}$"):
        check_whole(value, "--steps", 1, 10)


def test_a_choice_lists_the_valid_names():
    with pytest.raises(SuiteError, match="^unknown split 'val'; choose one of: train, test$"):
        check_choice("val", "split", ("train", "test"))


@pytest.mark.parametrize("name, needle", [
    ("../../x", "is a file name, not a path"), ("a/b", "is a file name, not a path"),
    ("a\\b", "is a file name, not a path"), ("", "--name is empty"), ("  ", "--name is empty"),
    (".hidden", "must not start with a dot"), ("..", "must not start with a dot"),
])
def test_a_file_name_stays_in_its_folder(name, needle):
    with pytest.raises(SuiteError, match=needle):
        check_file_name(name)


def test_file_names_that_are_fine():
    check_file_name(None)  # not given: the default name
    check_file_name("run-1.v2")
