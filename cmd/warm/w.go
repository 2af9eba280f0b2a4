package main
import (
 _ "modernc.org/sqlite"
 _ "github.com/jackc/pgx/v5/stdlib"
 _ "github.com/jackc/pgx/v5/pgxpool"
 _ "github.com/nats-io/nats-server/v2/server"
 _ "github.com/nats-io/nats.go/jetstream"
 _ "github.com/prometheus/client_golang/prometheus/promhttp"
 _ "golang.org/x/crypto/argon2"
 _ "github.com/google/uuid"
 _ "github.com/santhosh-tekuri/jsonschema/v6"
)
func main(){}
