// Departments on Kafka: one SCRAM-SHA-512 user per department and ACLs that let it read only its own referral topic
// with consumer groups named "<department>.*". Kafka's Admin API, run as a single-file program on the broker's jars:
//
//   printf 'civil_affairs <password>\n' | java -cp "$KAFKA_HOME/libs/*" DepartmentAccess.java \
//       --bootstrap-server kafka:9092 [--command-config admin.properties] \
//       --topic-template 'outreach.referral.{department}.events' [--topic-prefix p.] [--revoke]
//
// stdin: one line per department, "<department> [<password>]"; without a password only the ACLs are granted. Passwords
// never appear on a command line. Idempotent: credentials are upserted, existing ACLs stay. --revoke deletes the ACLs.
// devstack runs it at start-up (shared/devstack/departments.py); deploy/kafka/README.md has production.

import java.io.BufferedReader;
import java.io.FileInputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialAlteration;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public class DepartmentAccess {
    static final int SCRAM_ITERATIONS = 8192;

    public static void main(String[] args) throws Exception {
        Properties config = new Properties();
        String template = null;
        String prefix = "";
        boolean revoke = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--bootstrap-server" -> config.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[++i]);
                case "--command-config" -> {
                    try (FileInputStream in = new FileInputStream(args[++i])) {
                        config.load(in);
                    }
                }
                case "--topic-template" -> template = args[++i];
                case "--topic-prefix" -> prefix = args[++i];
                case "--revoke" -> revoke = true;
                default -> throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }
        if (template == null || !template.contains("{department}")) {
            throw new IllegalArgumentException("--topic-template with {department} is required");
        }
        List<AclBinding> acls = new ArrayList<>();
        List<UserScramCredentialAlteration> users = new ArrayList<>();
        BufferedReader stdin = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line; (line = stdin.readLine()) != null; ) {
            String[] parts = line.trim().split("\\s+", 2);
            if (parts[0].isEmpty()) continue;
            String department = parts[0];
            if (!department.matches("[a-z][a-z0-9_]*")) throw new IllegalArgumentException("bad department " + department);
            String principal = "User:" + department;
            String topic = prefix + template.replace("{department}", department);
            ResourcePattern topicPattern = new ResourcePattern(ResourceType.TOPIC, topic, PatternType.LITERAL);
            ResourcePattern groups = new ResourcePattern(ResourceType.GROUP, department + ".", PatternType.PREFIXED);
            for (AclOperation op : new AclOperation[] {AclOperation.READ, AclOperation.DESCRIBE}) {
                acls.add(new AclBinding(topicPattern, new AccessControlEntry(principal, "*", op, AclPermissionType.ALLOW)));
            }
            acls.add(new AclBinding(groups, new AccessControlEntry(principal, "*", AclOperation.READ, AclPermissionType.ALLOW)));
            if (parts.length > 1 && !revoke) {
                ScramCredentialInfo info = new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS);
                users.add(new UserScramCredentialUpsertion(department, info, parts[1]));
            }
        }
        try (Admin admin = Admin.create(config)) {
            if (revoke) {
                List<AclBindingFilter> filters = acls.stream().map(AclBinding::toFilter).toList();
                admin.deleteAcls(filters).all().get();
                System.out.println("revoked " + acls.size() + " ACLs");
                return;
            }
            if (!users.isEmpty()) {
                admin.alterUserScramCredentials(users).all().get();
            }
            admin.createAcls(acls).all().get();
            System.out.println("departments: " + users.size() + " SCRAM users upserted, " + acls.size() + " ACLs granted");
        }
    }
}
