package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Comma-separated list flags of `facegate bench` and `facegate eval`.

type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error {
	for _, x := range strings.Split(v, ",") {
		if x = strings.TrimSpace(x); x != "" {
			*s = append(*s, x)
		}
	}
	return nil
}

// intList is a comma-separated list of positive integers.
type intList struct{ v *[]int }

func (l intList) String() string {
	if l.v == nil {
		return ""
	}
	s := make([]string, len(*l.v))
	for i, n := range *l.v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func (l intList) Set(v string) error {
	var out []int
	for _, x := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil || n <= 0 {
			return fmt.Errorf("%q is not a positive integer", x)
		}
		out = append(out, n)
	}
	*l.v = out
	return nil
}

// floatList is a comma-separated list of positive numbers.
type floatList struct{ v *[]float64 }

func (l floatList) String() string {
	if l.v == nil {
		return ""
	}
	s := make([]string, len(*l.v))
	for i, x := range *l.v {
		s[i] = strconv.FormatFloat(x, 'g', -1, 64)
	}
	return strings.Join(s, ",")
}

func (l floatList) Set(v string) error {
	var out []float64
	for _, x := range strings.Split(v, ",") {
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil || !(f > 0) || math.IsInf(f, 0) {
			return fmt.Errorf("%q is not a positive number", x)
		}
		out = append(out, f)
	}
	*l.v = out
	return nil
}
