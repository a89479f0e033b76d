package discovery

import (
	"fmt"
	"testing"
)

func TestExp(t *testing.T) {
	for _, s := range []string{"0.57", "0.29", "1.1", "0.3", "2.3", "4.35", "0.7", "1.15"} {
		d, err := ParseDuration(s)
		fmt.Println(s, d, err)
	}
	for _, s := range []string{"{\n\t\"timeout\": 10,\n\t\"interval\": 30,\n\t\"origins\": [\n\t\t{\n\t\t\t\"scheme\": \"http\",\n\t\t\t\"hostname\": \"example.com\",\n\t\t\t\"port\": 9301,\n\t\t\t\"mode\": \"advanced\"\n\t\t}\n\t]\n}\n",
		"[1]", "null", "origins: [{url: 'http://h', labels: {}}]",
		"origins: [{name: x, scheme: http, hostname: \"a\\x00b\"}]",
		"origins: [{scheme: http, hostname: \"a:b\"}]",
		"\xef\xbb\xbf{\"origins\": [{\"scheme\": \"http\", \"hostname\": \"h\"}]}",
	} {
		c, err := Parse([]byte(s))
		fmt.Printf("%q\n  %+v\n  %v\n", s, c, err)
		if err == nil {
			b, _ := c.MarshalJSON()
			fmt.Println("  ", string(b))
			c2, err := Parse(b)
			fmt.Printf("  %+v %v\n", c2, err)
		}
	}
}
