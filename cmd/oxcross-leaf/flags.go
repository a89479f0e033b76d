package main

import "time"

// durationFlag is a kingpin value for a time.Duration.
type durationFlag time.Duration

func (d *durationFlag) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = durationFlag(v)
	return nil
}

func (d *durationFlag) String() string { return time.Duration(*d).String() }

func (d durationFlag) get() time.Duration { return time.Duration(d) }
