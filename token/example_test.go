package token_test

import (
	"crypto/rand"
	"fmt"

	"github.com/livectx/livectx/token"
)

func Example() {
	// Keys are random bytes shared by every node, kept out of the code
	// (an environment variable, a secret store). The first signs.
	key := make([]byte, 32)
	rand.Read(key)
	signer, err := token.NewSigner([][]byte{key})
	if err != nil {
		panic(err)
	}

	// First page view: the server mints the id and hands the client a
	// token bound to the client's session.
	id, tok, err := signer.Mint("session-of-alice")
	if err != nil {
		panic(err)
	}

	// The client comes back with the token: verify it for the session of
	// the request before touching the store.
	got, err := signer.Verify(tok, "session-of-alice")
	fmt.Println(got == id, err)
	_, err = signer.Verify(tok, "session-of-mallory")
	fmt.Println(err)
	// Output:
	// true <nil>
	// token: invalid
}
