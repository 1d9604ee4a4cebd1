// Package config loads flowstate's configuration (a YAML file, FLOWSTATE_
// environment variables and flags) into the engine's own config structs,
// defaulted and validated, every error naming its key.
package config
