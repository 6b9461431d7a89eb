// A department's subscriber: reads its referral events from the platform's Kafka with the CloudEvents Go SDK's
// Kafka binding (sarama) and prints one JSON line per referral event of its department.
//
//	go run . -brokers 127.0.0.1:59092 -topic outreach.referral.events -department civil_affairs
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
)

// referral holds the public referral facts every outreach.referral.*.v1 event carries (ids and facts only).
type referral struct {
	ReferralID string `json:"referral_id"`
	CaseID     string `json:"case_id"`
	Department string `json:"department"`
	Category   string `json:"category"`
	Urgency    string `json:"urgency"`
	OrgPath    string `json:"org_path"`
}

// line is what the subscriber prints for each of its department's referral events.
type line struct {
	ID            string `json:"id"`
	Type          string `json:"type"`
	Source        string `json:"source"`
	Subject       string `json:"subject"`
	Encoding      string `json:"encoding"`
	CorrelationID string `json:"correlationid"`
	referral
}

func main() {
	brokers := flag.String("brokers", envOr("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:59092"), "Kafka bootstrap servers, comma-separated")
	topic := flag.String("topic", "outreach.referral.events", "the referral topic")
	department := flag.String("department", "", "the department whose referrals to print (required)")
	group := flag.String("group", "", "consumer group (default: <department>.referrals; the broker lets a department use only groups named <department>.*)")
	count := flag.Int("count", 0, "exit after printing this many events (0: run until interrupted)")
	timeout := flag.Duration("timeout", 0, "give up (exit 1) after this long (0: never)")
	user := flag.String("user", os.Getenv("KAFKA_SASL_USERNAME"), "SASL/SCRAM-SHA-512 user (the department listener); empty: no SASL")
	password := flag.String("password", "", "SASL password (default: $KAFKA_SASL_PASSWORD)")
	flag.Parse()
	if *department == "" {
		log.Fatal("-department is required")
	}
	if *group == "" {
		*group = *department + ".referrals"
	}

	config := sarama.NewConfig()
	config.Version = sarama.V3_6_0_0
	config.ClientID = "department-subscriber"
	config.Consumer.Offsets.Initial = sarama.OffsetOldest // a new department reads the topic from the start
	if *user != "" {
		if *password == "" {
			*password = os.Getenv("KAFKA_SASL_PASSWORD")
		}
		useSCRAM(config, *user, *password)
	}

	consumer, err := kafka_sarama.NewConsumer(strings.Split(*brokers, ","), config, *group, *topic)
	if err != nil {
		log.Fatalf("kafka: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if *timeout > 0 {
		ctx, cancel = context.WithTimeout(context.Background(), *timeout)
	}
	defer cancel()
	go func() {
		if err := consumer.OpenInbound(ctx); err != nil && ctx.Err() == nil {
			log.Fatalf("kafka: %v", err)
		}
	}()
	defer consumer.Close(context.Background())

	out := json.NewEncoder(os.Stdout)
	printed := 0
	for *count == 0 || printed < *count {
		msg, err := consumer.Receive(ctx)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
				log.Fatalf("stopped after %d events: %v", printed, ctx.Err())
			}
			log.Fatalf("receive: %v", err)
		}
		shown, err := handle(ctx, msg, *department, out)
		// Finishing marks the offset consumed; a message we cannot read is reported and skipped, not retried.
		if finishErr := msg.Finish(err); finishErr != nil {
			log.Printf("finish: %v", finishErr)
		}
		if err != nil {
			log.Printf("skipped a message: %v", err)
			continue
		}
		if shown {
			printed++
		}
	}
}

// handle decodes one Kafka message with the SDK (structured or binary mode) and prints it if it is ours.
func handle(ctx context.Context, msg binding.Message, department string, out *json.Encoder) (bool, error) {
	encoding := msg.ReadEncoding().String()
	event, err := binding.ToEvent(ctx, msg)
	if err != nil {
		return false, fmt.Errorf("not a CloudEvent: %w", err)
	}
	if err := event.Validate(); err != nil {
		return false, fmt.Errorf("invalid CloudEvent %s: %w", event.ID(), err)
	}
	if !strings.HasPrefix(event.Type(), "outreach.referral.") {
		return false, nil
	}
	var facts referral
	if err := event.DataAs(&facts); err != nil {
		return false, fmt.Errorf("referral data of %s: %w", event.ID(), err)
	}
	if facts.Department != department {
		return false, nil // another department's referral (all departments share the topic today)
	}
	correlation, _ := event.Extensions()["correlationid"].(string)
	return true, out.Encode(line{
		ID:            event.ID(),
		Type:          event.Type(),
		Source:        event.Source(),
		Subject:       event.Subject(),
		Encoding:      encoding,
		CorrelationID: correlation,
		referral:      facts,
	})
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func init() {
	log.SetFlags(0)
	log.SetPrefix("department-subscriber: ")
}
