package server

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mizuchi/uploadr/internal/s3test"
)

// fgaModel is the OpenFGA model of the tests (the JSON form of the DSL
//
//	model
//	  schema 1.1
//	type user
//	type folder
//	  relations
//	    define writer: [user] or writer from parent
//	    define parent: [folder]
//
// ): a writer of a folder writes in it and in its sub-folders named by parent tuples.
const fgaModel = `{
  "schema_version": "1.1",
  "type_definitions": [
    {"type": "user"},
    {"type": "folder",
     "relations": {
       "parent": {"this": {}},
       "writer": {"union": {"child": [
         {"this": {}},
         {"tupleToUserset": {"tupleset": {"relation": "parent"}, "computedUserset": {"relation": "writer"}}}
       ]}}
     },
     "metadata": {"relations": {
       "parent": {"directly_related_user_types": [{"type": "folder"}]},
       "writer": {"directly_related_user_types": [{"type": "user"}]}
     }}}
  ]
}`

// A real OpenFGA decides per principal and key prefix: a user may write in the folders it is a
// writer of (directly or through a parent folder), nowhere else; nothing reaches the upstream on
// a denial; a repeated tuple is decided from the cache; a stopped OpenFGA fails closed.
func TestOpenFGADecidesUploads(t *testing.T) {
	up := s3test.Start(t)
	fga := s3test.StartOpenFGA(t)
	store := fga.CreateStore(t, "mizuchi-test")
	model := fga.WriteModel(t, store, fgaModel)
	const b = "fga-bucket"
	fga.WriteTuples(t, store, model,
		s3test.FGATuple{User: "user:alice", Relation: "writer", Object: "folder:" + b + "/users/alice"},
		s3test.FGATuple{User: "user:bob", Relation: "writer", Object: "folder:" + b + "/shared"},
		s3test.FGATuple{User: "folder:" + b + "/shared", Relation: "parent", Object: "folder:" + b + "/shared/2026"},
	)
	p := startAuthzProxy(t, up,
		BucketConfig{Name: b, Authz: AuthzConfig{OpenFGA: &OpenFGAConfig{
			AuthzCommon: AuthzCommon{URL: fga.URL, Timeout: Duration(2 * time.Second)},
			StoreID:     store, AuthorizationModelID: model, Relation: "writer",
			User: "user:{principal}", Object: "folder:{bucket}/{key_prefix}",
		}}},
		BucketConfig{Name: "plain-fga"},
	)
	body := []byte("hello, relations")
	for _, tc := range []struct {
		principal, key string
		want           string
	}{
		{"alice", "users/alice/a.txt", ""},
		{"alice", "users/bob/a.txt", "AccessDenied"},
		{"alice", "top.txt", "AccessDenied"},
		{"bob", "shared/b.txt", ""},
		{"bob", "shared/2026/b.txt", ""}, // through the parent tuple
		{"bob", "users/alice/b.txt", "AccessDenied"},
		{"carol", "shared/c.txt", "AccessDenied"},
	} {
		if got := p.put(t, tc.principal, b, tc.key, body, "", nil); got != tc.want {
			t.Errorf("%s PUT %s: %q; want %q", tc.principal, tc.key, got, tc.want)
		}
		if exists := up.ObjectExists(t, b, tc.key); exists != (tc.want == "") {
			t.Errorf("%s PUT %s: exists upstream = %v", tc.principal, tc.key, exists)
		}
	}

	// Another key in the same folder is the same tuple: decided from the cache.
	hits := counter(`mizuchi_authz_cache_hits_total{service="openfga"}`)
	if got := p.put(t, "alice", b, "users/alice/second.txt", body, "", nil); got != "" {
		t.Fatalf("second PUT in alice's folder: %s", got)
	}
	if counter(`mizuchi_authz_cache_hits_total{service="openfga"}`) != hits+1 {
		t.Error("the repeated tuple was not a cache hit")
	}

	// A multipart upload is decided at every step (create, part, complete).
	cl := p.client("alice")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key := "users/alice/mp.bin"
	cr, err := cl.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(b), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	part := s3test.RandomBytes(5<<20, 1)
	pr, err := cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(b), Key: aws.String(key), UploadId: cr.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader(part)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(b), Key: aws.String(key), UploadId: cr.UploadId,
		MultipartUpload: &s3types.CompletedMultipartUpload{Parts: []s3types.CompletedPart{{ETag: pr.ETag, PartNumber: aws.Int32(1)}}}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := up.GetObject(t, b, key); !bytes.Equal(got, part) {
		t.Error("multipart object differs upstream")
	}
	if _, err := p.client("bob").CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(b), Key: aws.String("users/alice/bob.bin")}); err == nil ||
		!strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("bob's multipart upload in alice's folder: %v", err)
	}

	// OpenFGA goes away: a tuple that holds but was never decided (so not cached) is refused
	// (fail closed), the other bucket serves, the proxy is not ready.
	fga.WriteTuples(t, store, model, s3test.FGATuple{User: "user:bob", Relation: "writer", Object: "folder:" + b + "/outage"})
	fga.Stop()
	if got := p.put(t, "bob", b, "outage/b.txt", body, "", nil); got != "AccessDenied" {
		t.Errorf("PUT while OpenFGA is down: %q; want AccessDenied", got)
	}
	if up.ObjectExists(t, b, "outage/b.txt") {
		t.Error("object written while OpenFGA was down")
	}
	if got := p.put(t, "carol", "plain-fga", "x.txt", body, "", nil); got != "" {
		t.Errorf("PUT to the bucket without authz while OpenFGA is down: %q", got)
	}
	if why := p.waitReady(t, false); !strings.Contains(why, "authz "+fga.URL+" unreachable") {
		t.Errorf("not ready for another reason: %s", why)
	}
}
