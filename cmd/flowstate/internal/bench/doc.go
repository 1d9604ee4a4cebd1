// Package bench holds the harnesses of `flowstate bench`: records per
// second through a count-by-key processor, restore speed from a changelog,
// and the memory of many stores under one budget.
package bench
