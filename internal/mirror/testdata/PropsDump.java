import java.io.FileInputStream;
import java.util.Properties;
import java.util.TreeSet;

// Prints a properties file as java.util.Properties reads it: one
// "key<TAB>value" line per entry, sorted, with \ \n \t escaped, so a Go test
// can compare kmt's reading and writing of the format with Java's own.
public class PropsDump {
    public static void main(String[] args) throws Exception {
        Properties p = new Properties();
        try (FileInputStream in = new FileInputStream(args[0])) {
            p.load(in);
        }
        for (String k : new TreeSet<>(p.stringPropertyNames())) {
            System.out.println(esc(k) + "\t" + esc(p.getProperty(k)));
        }
    }

    static String esc(String s) {
        return s.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t");
    }
}
