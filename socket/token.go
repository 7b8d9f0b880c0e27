package socket

import (
	"context"
	"errors"
	"fmt"

	"github.com/livectx/livectx/token"
)

// OpenToken opens the socket of the LiveView instance that tok names, if
// signer issued tok for owner (the application's session or user id, taken
// from the request, never from the client's say-so) and it has not expired.
// It is the safe way to open a socket for a client that comes back: the
// client presents a token from token.Signer.Mint or Sign, not an id.
//
// The token is verified before anything else: a bad token (forged,
// tampered, truncated, expired, signed by a retired key, another owner's)
// returns an error matching token.ErrInvalid, the same whatever was wrong,
// and the store is not touched. A good token opens its id as Open does; a
// token whose record has been deleted or has expired opens initial, as a
// new page.
func (m *Manager[T]) OpenToken(ctx context.Context, signer *token.Signer, tok, owner string, initial T) (*Socket[T], error) {
	if signer == nil {
		return nil, errors.New("socket: open token: nil signer")
	}
	id, err := signer.Verify(tok, owner)
	if err != nil {
		return nil, fmt.Errorf("socket: open token: %w", err)
	}
	return m.Open(ctx, id, initial)
}
