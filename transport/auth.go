package transport

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/presencehub/presencehub/presence"
)

// Roles a token can carry.
const (
	RoleAgent = "agent"
	RoleAdmin = "admin"
)

// Claims are the claims of a presencehub token: sub is the agent id.
type Claims struct {
	Site   string   `json:"site"`
	Groups []string `json:"groups,omitempty"`
	Role   string   `json:"role"`
	jwt.RegisteredClaims
}

// Auth signs and verifies HS256 tokens with one shared secret.
type Auth struct {
	secret []byte
	now    func() time.Time
}

// NewAuth returns an Auth for secret, which must not be empty.
func NewAuth(secret []byte) (*Auth, error) {
	if len(secret) == 0 {
		return nil, errors.New("transport: empty signing secret")
	}
	return &Auth{secret: slices.Clone(secret), now: time.Now}, nil
}

// errTokenExpired is reported for tokens past their exp.
var errTokenExpired = errors.New("token expired")

// Verify parses and checks a token: signature (HS256 only), exp (required),
// and the shape of every claim. Errors never contain the token.
func (a *Auth) Verify(token string) (*Claims, error) {
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return a.secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(a.now),
	)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, errTokenExpired
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return nil, errors.New("invalid token signature")
	case errors.Is(err, jwt.ErrTokenMalformed):
		return nil, errors.New("malformed token")
	case err != nil:
		return nil, errors.New("invalid token")
	}
	if err := validateClaims(&c); err != nil {
		return nil, err
	}
	return &c, nil
}

func validateClaims(c *Claims) error {
	if err := presence.ValidateID("agent", c.Subject); err != nil {
		return fmt.Errorf("invalid token: sub: %w", err)
	}
	if err := presence.ValidateID("site", c.Site); err != nil {
		return fmt.Errorf("invalid token: site: %w", err)
	}
	for _, g := range c.Groups {
		if err := presence.ValidateID("group", g); err != nil {
			return fmt.Errorf("invalid token: groups: %w", err)
		}
	}
	switch c.Role {
	case RoleAgent, RoleAdmin:
	case "":
		c.Role = RoleAgent
	default:
		return fmt.Errorf("invalid token: role %q: want agent or admin", c.Role)
	}
	return nil
}

// TokenRequest says what a minted token grants.
type TokenRequest struct {
	Site   string
	Agent  string
	Groups []string
	Role   string
	TTL    time.Duration
}

// Mint signs a token for req.
func (a *Auth) Mint(req TokenRequest) (string, error) {
	now := a.now()
	c := Claims{
		Site:   req.Site,
		Groups: req.Groups,
		Role:   req.Role,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   req.Agent,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(req.TTL)),
		},
	}
	if req.TTL <= 0 {
		return "", errors.New("token TTL must be positive")
	}
	if err := validateClaims(&c); err != nil {
		return "", err
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(a.secret)
	if err != nil {
		return "", fmt.Errorf("failed to sign token: %w", err)
	}
	return s, nil
}
