package s3sig_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/mizuchi/uploadr/s3sig"
)

// TestChunkSignaturesOracle: the AWS SDK's stream signer (event streams) computes the same chained
// string to sign as S3 chunks when the headers are empty — "AWS4-HMAC-SHA256-PAYLOAD", date, scope,
// previous signature, hex(sha256("")), hex(sha256(payload)) — so it is the oracle for SignChunk and
// VerifyChunk over random secrets, regions, dates and chunk sizes.
func TestChunkSignaturesOracle(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 50 {
		secret := string(randBytes(r, 1+r.IntN(60), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/+="))
		region := []string{"us-east-1", "eu-west-3", "ap-southeast-2", "garage"}[i%4]
		tm := time.Date(2020+r.IntN(10), time.Month(1+r.IntN(12)), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), 0, time.UTC)
		amzDate := s3sig.AppendAmzDate(nil, tm)
		seedSig := randBytes(r, 32, "")
		seedHex := []byte(hex.EncodeToString(seedSig))

		oracle := v4.NewStreamSigner(aws.Credentials{AccessKeyID: "AK", SecretAccessKey: secret}, "s3", region, seedSig)
		seed, err := s3sig.NewChunkSeed(secret, amzDate, region, seedHex)
		if err != nil {
			t.Fatal(err)
		}
		var c, v s3sig.ChunkVerifier
		c.Reset(&seed)
		v.Reset(&seed)
		for k := range 4 {
			var data []byte
			if k < 3 {
				data = randBytes(r, r.IntN(70<<10), "")
			}
			want, err := oracle.GetSignature(context.Background(), nil, data, tm)
			if err != nil {
				t.Fatal(err)
			}
			got := c.SignChunk(nil, data)
			if !bytes.Equal(got, []byte(hex.EncodeToString(want))) {
				t.Fatalf("case %d chunk %d (%d bytes): SignChunk = %s; oracle %x", i, k, len(data), got, want)
			}
			if err := v.VerifyChunk(data, got); err != nil {
				t.Fatalf("case %d chunk %d: VerifyChunk: %v", i, k, err)
			}
		}
	}
}

func randBytes(r *rand.Rand, n int, alphabet string) []byte {
	b := make([]byte, n)
	for i := range b {
		if alphabet == "" {
			b[i] = byte(r.Uint32())
		} else {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
	}
	return b
}
